// multiply_by: occurrences that carry a value, in summaries, deltas and the engagement score.
#include <gtest/gtest.h>

#include <limits>
#include <random>

#include "core/deltas.hpp"
#include "core/engine.hpp"
#include "test_util.hpp"

using namespace leadscore;
using leadscore_test::P;
using leadscore_test::ts;

namespace {

Model purchase_model(std::optional<std::int64_t> max_count, std::optional<MicroPoints> max_points,
                     bool decay = false) {
    ActivityRuleSpec r;
    r.id = 1;
    r.name = "purchase amount";
    r.activity_type = "purchase";
    r.multiply_by = "amount";
    r.points = 10000;  // 0.01 per unit
    r.max_count = max_count;
    r.max_points = max_points;
    if (decay) r.half_life = Interval{0, 30, 0};
    return Model(ModelSpec{"m", std::nullopt, std::nullopt}, {r}, {}, {});
}

}  // namespace

TEST(Multiply, SummaryKeepsValuesWithTheirTimes) {
    Summary s;
    s.add(1, ts(2026, 3, 1), P(500));
    s.add(1, ts(2026, 1, 1), P(200));
    s.add(1, ts(2026, 3, 1), P(100));  // same time, smaller value: ordered by value
    const RuleOccurrences& r = s.rules().at(0);
    EXPECT_EQ(r.times, (std::vector<Timestamp>{ts(2026, 1, 1), ts(2026, 3, 1), ts(2026, 3, 1)}));
    EXPECT_EQ(r.values, (std::vector<MicroPoints>{P(200), P(100), P(500)}));
    const std::string bytes = s.serialize();
    EXPECT_EQ(bytes[0], 4);
    Summary back = Summary::deserialize(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
    EXPECT_TRUE(back == s);
    EXPECT_EQ(back.serialize(), bytes);
    // Removing needs the value too.
    EXPECT_FALSE(back.remove(1, ts(2026, 3, 1), P(300)));
    EXPECT_TRUE(back.remove(1, ts(2026, 3, 1), P(500)));
    EXPECT_EQ(back.rules().at(0).values, (std::vector<MicroPoints>{P(200), P(100)}));
    // Plain summaries keep their older, smaller format.
    Summary plain;
    plain.add(2, ts(2026, 1, 1));
    EXPECT_EQ(plain.serialize()[0], 1);
    EXPECT_THROW(plain.add(2, ts(2026, 1, 2), P(1)), std::logic_error);
}

// An occurrence of a multiply_by rule carries its own points, round(points x value, 6), worked
// out where the value is read (in numeric); the engine sums, caps and decays those.
TEST(Multiply, EngagementSumsTheCountedOccurrencesOwnPoints) {
    Summary s;
    s.add(1, ts(2026, 1, 1), P(10));       // 0.01 x 1000
    s.add(1, ts(2026, 2, 1), 2500000);     // 0.01 x 250
    s.add(1, ts(2026, 3, 1), 12345000);    // 0.01 x 1234.5
    const Timestamp now = ts(2026, 4, 1);
    EXPECT_EQ(compute_engagement(purchase_model(std::nullopt, std::nullopt), s, now, false).engagement,
              P(10) + 2500000 + 12345000);
    // A cap counts the most recent occurrences, with their own points.
    EXPECT_EQ(compute_engagement(purchase_model(2, std::nullopt), s, now, false).engagement, 2500000 + 12345000);
    // max_points limits the total.
    EXPECT_EQ(compute_engagement(purchase_model(std::nullopt, P(20)), s, now, false).engagement, P(20));
    // Occurrences after as_of do not count.
    EXPECT_EQ(compute_engagement(purchase_model(std::nullopt, std::nullopt), s, ts(2026, 2, 15), false).engagement,
              P(10) + 2500000);
    // Decay weighs each occurrence's own points.
    Summary one;
    one.add(1, ts(2026, 1, 1), P(10));
    EXPECT_EQ(compute_engagement(purchase_model(std::nullopt, std::nullopt, true), one, ts(2026, 1, 31), false)
                  .engagement,
              P(5));
    // Details name the rule once, with the occurrences counted and their total.
    const EngagementResult e = compute_engagement(purchase_model(2, std::nullopt), s, now, true);
    ASSERT_EQ(e.contributions.size(), 1u);
    EXPECT_EQ(e.contributions[0].occurrences, 2);
    EXPECT_EQ(e.contributions[0].points, 2500000 + 12345000);
}

TEST(Multiply, IncrementalDeltasEqualTheSummaryOfTheRows) {
    std::mt19937_64 rng(7);
    for (int round = 0; round < 200; round++) {
        std::vector<Occurrence> rows;
        const int n = static_cast<int>(rng() % 12);
        for (int i = 0; i < n; i++)
            rows.push_back(Occurrence{1, static_cast<Timestamp>(rng() % 5) * 1000,
                                      static_cast<MicroPoints>(rng() % 7) * 500000 - 1000000});
        Summary incremental;
        std::vector<Occurrence> kept;
        for (const Occurrence& o : rows) {
            DeltaMap d;
            const std::uint32_t lead = d.lead("a");
            const bool remove = !kept.empty() && rng() % 3 == 0;
            if (remove) {
                const std::size_t victim = rng() % kept.size();
                d.add(lead, kept[victim], false);
                kept.erase(kept.begin() + static_cast<std::ptrdiff_t>(victim));
            } else {
                d.add(lead, o, true);
                kept.push_back(o);
            }
            d.group();
            ASSERT_TRUE(apply_deltas(incremental, d.added(lead), d.removed(lead), 0));
        }
        Summary scratch;
        for (auto it = kept.rbegin(); it != kept.rend(); ++it) scratch.add(it->rule_id, it->time, it->value);
        EXPECT_TRUE(incremental == scratch);
        EXPECT_EQ(incremental.serialize(), scratch.serialize());
        const Model m = purchase_model(3, P(3));
        EXPECT_EQ(compute_engagement(m, incremental, 10000, false).engagement,
                  compute_engagement(m, scratch, 10000, false).engagement);
    }
}

namespace {

FitRuleSpec fit_rule(std::int64_t id, const std::string& name, MicroPoints points, const std::string& multiply_by = "",
                     bool disqualify = false) {
    FitRuleSpec r;
    r.id = id;
    r.name = name;
    r.points = points;
    r.multiply_by = multiply_by;
    r.disqualify = disqualify;
    return r;
}

}  // namespace

TEST(Multiply, FitRuleWorthTheMatchsOwnPoints) {
    const FitRuleSpec per_employee = fit_rule(1, "1 per 100 employees", 10000, "account.employees");
    const FitRuleSpec ceo = fit_rule(2, "CEO", P(20));
    Model m(ModelSpec{"m", std::nullopt, std::nullopt}, {}, {per_employee, ceo}, {});
    // 0.01 x 1250 employees, worked out where the value was read.
    FitResult f = compute_fit(m, std::vector<FitMatch>{{1, 12500000}, {2, kNoValue}});
    EXPECT_EQ(f.fit, P(12) + 500000 + P(20));
    ASSERT_EQ(f.contributions.size(), 2u);
    EXPECT_EQ(f.contributions[0].points, 12500000);
}

TEST(Multiply, FitTotalEqualsComputeFit) {
    const FitRuleSpec per_employee = fit_rule(1, "1 per 100 employees", 10000, "account.employees");
    const FitRuleSpec rival = fit_rule(2, "rival", -P(5), "", true);
    const FitRuleSpec huge = fit_rule(3, "huge", P(1000000));
    Model m(ModelSpec{"m", std::nullopt, std::nullopt}, {}, {per_employee, rival, huge}, {});
    const std::vector<std::vector<FitMatch>> cases = {
        {}, {{1, 12500000}}, {{2, kNoValue}, {1, -7}}, {{3, kNoValue}, {9, kNoValue}}, {{1, 5}, {3, kNoValue}, {2, kNoValue}}};
    for (const auto& matches : cases) {
        const FitResult a = compute_fit(m, matches), b = compute_fit_total(m, matches);
        EXPECT_EQ(a.fit, b.fit);
        EXPECT_EQ(a.disqualified, b.disqualified);
        EXPECT_TRUE(b.contributions.empty());
    }
    // Past the range of a score: the same error.
    const std::vector<FitMatch> overflow = {{1, std::numeric_limits<MicroPoints>::max()}, {3, kNoValue}};
    EXPECT_THROW(compute_fit(m, overflow), UserError);
    EXPECT_THROW(compute_fit_total(m, overflow), UserError);
}
