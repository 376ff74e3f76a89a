#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>

#include "core/summary_builder.hpp"

using namespace leadscore;

namespace {

// Random occurrences of many leads (short keys, and keys longer than a slot holds), in random
// order, through batches of several sizes: the same summaries as adding each directly.
void check_against_direct(std::size_t batch, int leads, int occurrences, unsigned seed) {
    std::mt19937_64 rng(seed);
    SummaryBuilder builder(batch);
    std::map<std::string, Summary> direct;
    for (int n = 0; n < occurrences; n++) {
        const int l = static_cast<int>(rng() % static_cast<unsigned>(leads));
        const std::string key = l % 3 == 0 ? "a-rather-long-lead-key-" + std::to_string(l) : std::to_string(l);
        const std::int64_t rule = 1 + static_cast<std::int64_t>(rng() % 6);
        const Timestamp t = static_cast<Timestamp>(rng() % 1000) * 1000000;
        // Rule 6 carries values (multiply_by); the others none.
        const MicroPoints value = rule == 6 ? static_cast<MicroPoints>(rng() % 5) * 250000 : kNoValue;
        builder.add(builder.lead(key), rule, t, value);
        direct[key].add(rule, t, value);
    }
    builder.flush();
    ASSERT_EQ(builder.size(), direct.size());
    for (std::uint32_t i = 0; i < builder.size(); i++) {
        auto it = direct.find(builder.key(i));
        ASSERT_NE(it, direct.end()) << builder.key(i);
        EXPECT_EQ(builder.summary(i), it->second) << builder.key(i);
        EXPECT_EQ(builder.summary(i).serialize(), it->second.serialize()) << builder.key(i);
    }
}

}  // namespace

TEST(SummaryBuilder, SameSummariesAsDirectAdds) {
    check_against_direct(1, 5, 200, 1);
    check_against_direct(7, 50, 2000, 2);
    check_against_direct(1 << 20, 3000, 30000, 3);
    check_against_direct(1000, 3000, 30000, 4);
}

TEST(SummaryBuilder, SameKeySameLead) {
    SummaryBuilder b(4);
    const std::uint32_t a = b.lead("17");
    const std::uint32_t c = b.lead("a-key-longer-than-sixteen-bytes");
    EXPECT_NE(a, c);
    // Many other leads in between: the table grows and still finds both.
    for (int i = 0; i < 5000; i++) b.lead("k" + std::to_string(i));
    EXPECT_EQ(b.lead("17"), a);
    EXPECT_EQ(b.lead("a-key-longer-than-sixteen-bytes"), c);
    EXPECT_NE(b.lead("a-key-longer-than-sixteen-bytez"), c);
    EXPECT_EQ(b.key(a), "17");
    EXPECT_EQ(b.size(), 5003u);
    // A lead without occurrences keeps an empty summary.
    b.flush();
    EXPECT_TRUE(b.summary(a).empty());
}
