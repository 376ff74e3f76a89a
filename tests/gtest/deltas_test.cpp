#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "core/deltas.hpp"

using namespace leadscore;

namespace {

using Expected = std::map<std::string, std::pair<std::vector<Occurrence>, std::vector<Occurrence>>>;

std::vector<std::pair<std::int64_t, Timestamp>> as_pairs(OccurrenceSpan s) {
    std::vector<std::pair<std::int64_t, Timestamp>> v;
    for (const Occurrence& o : s) v.emplace_back(o.rule_id, o.time);
    return v;
}

std::vector<std::pair<std::int64_t, Timestamp>> as_pairs(const std::vector<Occurrence>& s) {
    std::vector<std::pair<std::int64_t, Timestamp>> v;
    for (const Occurrence& o : s) v.emplace_back(o.rule_id, o.time);
    return v;
}

}  // namespace

TEST(DeltaMap, LeadsGetDenseIndicesInFirstSeenOrder) {
    DeltaMap d;
    EXPECT_TRUE(d.empty());
    EXPECT_EQ(d.find("a"), DeltaMap::npos);
    EXPECT_EQ(d.lead("b"), 0u);
    EXPECT_EQ(d.lead("a"), 1u);
    EXPECT_EQ(d.lead("b"), 0u);
    EXPECT_EQ(d.size(), 2u);
    EXPECT_EQ(d.find("a"), 1u);
    EXPECT_EQ(d.find("c"), DeltaMap::npos);
    EXPECT_EQ(d.key(0), "b");
    EXPECT_EQ(d.key(1), "a");
}

TEST(DeltaMap, GroupsAddedAndRemovedPerLeadInArrivalOrder) {
    DeltaMap d;
    const auto a = d.lead("a"), b = d.lead("b"), c = d.lead("c");
    d.add(a, {1, 10}, true);
    d.add(b, {2, 20}, false);
    d.add(a, {3, 30}, false);
    d.add(b, {4, 40}, true);
    d.add(a, {5, 50}, true);
    d.group();
    using P = std::vector<std::pair<std::int64_t, Timestamp>>;
    EXPECT_EQ(as_pairs(d.added(a)), (P{{1, 10}, {5, 50}}));
    EXPECT_EQ(as_pairs(d.removed(a)), (P{{3, 30}}));
    EXPECT_EQ(as_pairs(d.added(b)), (P{{4, 40}}));
    EXPECT_EQ(as_pairs(d.removed(b)), (P{{2, 20}}));
    EXPECT_TRUE(d.added(c).empty());
    EXPECT_TRUE(d.removed(c).empty());
    EXPECT_EQ(d.occurrence_count(), 5u);
}

TEST(DeltaMap, GroupsOccurrencesGatheredAcrossManyBlocksAndAfterClear) {
    DeltaMap d;
    for (int round = 0; round < 2; round++) {
        // Over three blocks' worth of occurrences, spread over 1000 leads.
        constexpr int kLeads = 1000, kRows = 200000;
        std::vector<std::uint32_t> index;
        for (int l = 0; l < kLeads; l++) index.push_back(d.lead("lead" + std::to_string(l)));
        for (int i = 0; i < kRows; i++) d.add(index[i % kLeads], {i % 7, i}, i % 5 != 0);
        EXPECT_EQ(d.occurrence_count(), static_cast<std::size_t>(kRows));
        d.group();
        for (int l : {0, 1, 499, 999}) {
            std::vector<Timestamp> added, removed;
            for (int i = l; i < kRows; i += kLeads) (i % 5 != 0 ? added : removed).push_back(i);
            std::vector<Timestamp> got_added, got_removed;
            for (const Occurrence& o : d.added(index[l])) got_added.push_back(o.time);
            for (const Occurrence& o : d.removed(index[l])) got_removed.push_back(o.time);
            EXPECT_EQ(got_added, added) << "lead " << l;
            EXPECT_EQ(got_removed, removed) << "lead " << l;
        }
        d.clear();
        EXPECT_EQ(d.occurrence_count(), 0u);
        EXPECT_TRUE(d.empty());
    }
}

TEST(DeltaMap, ReadingBeforeGroupingOrOfAnUnknownLeadThrows) {
    DeltaMap d;
    const auto a = d.lead("a");
    d.add(a, {1, 1}, true);
    EXPECT_THROW(d.added(a), std::logic_error);
    d.group();
    EXPECT_NO_THROW(d.added(a));
    d.add(a, {2, 2}, true);
    EXPECT_THROW(d.removed(a), std::logic_error);
    d.group();
    EXPECT_THROW(d.added(7), std::out_of_range);
    EXPECT_THROW(d.add(7, {1, 1}, true), std::out_of_range);
}

TEST(DeltaMap, ClearForgetsLeadsAndOccurrences) {
    DeltaMap d;
    d.reserve(1000);
    for (int i = 0; i < 100; i++) d.add(d.lead(std::to_string(i)), {i, i}, true);
    d.clear();
    EXPECT_TRUE(d.empty());
    EXPECT_EQ(d.occurrence_count(), 0u);
    EXPECT_EQ(d.find("5"), DeltaMap::npos);
    EXPECT_EQ(d.lead("5"), 0u);
    d.group();
    EXPECT_TRUE(d.added(0).empty());
}

// Against a std::map on random keys (with growth past every reserve): same leads, same
// occurrences per lead in the same order.
TEST(DeltaMap, MatchesAnOrderedMapOnRandomStatements) {
    std::mt19937_64 rng(42);
    for (int round = 0; round < 20; round++) {
        DeltaMap d;
        Expected want;
        d.reserve(static_cast<std::size_t>(rng() % 50));
        const int leads = 1 + static_cast<int>(rng() % 3000);
        const int rows = static_cast<int>(rng() % 20000);
        for (int r = 0; r < rows; r++) {
            const std::string key = "lead-" + std::to_string(rng() % static_cast<unsigned>(leads));
            const Occurrence o{static_cast<std::int64_t>(rng() % 30), static_cast<Timestamp>(rng() % 1000000)};
            const bool adding = rng() % 4 != 0;
            d.add(d.lead(key), o, adding);
            (adding ? want[key].first : want[key].second).push_back(o);
        }
        d.group();
        ASSERT_EQ(d.size(), want.size());
        for (const auto& [key, occ] : want) {
            const std::uint32_t i = d.find(key);
            ASSERT_NE(i, DeltaMap::npos) << key;
            EXPECT_EQ(d.key(i), key);
            EXPECT_EQ(as_pairs(d.added(i)), as_pairs(occ.first)) << key;
            EXPECT_EQ(as_pairs(d.removed(i)), as_pairs(occ.second)) << key;
        }
    }
}

// Keys up to 7 bytes are compared inside the slot, longer ones through the stored key:
// prefixes of one another, and the empty key, stay distinct leads on both sides of 7.
TEST(DeltaMap, ShortAndLongKeysThatArePrefixesStayDistinct) {
    DeltaMap d;
    const std::string base = "1234567890abcdefgh";
    for (std::size_t n = 0; n <= base.size(); n++) EXPECT_EQ(d.lead(base.substr(0, n)), n);
    for (std::size_t n = 0; n <= base.size(); n++) {
        EXPECT_EQ(d.find(base.substr(0, n)), n);
        EXPECT_EQ(d.key(static_cast<std::uint32_t>(n)), base.substr(0, n));
    }
    EXPECT_EQ(d.find("1234568"), DeltaMap::npos);
    EXPECT_EQ(d.find("12345678x"), DeltaMap::npos);
}

// ---------------------------------------------------------------- apply_deltas

TEST(ApplyDeltas, AddsAndRemovesOneLeadsOccurrences) {
    DeltaMap d;
    const std::uint32_t a = d.lead("a"), b = d.lead("b");
    d.add(a, Occurrence{1, 10}, true);
    d.add(b, Occurrence{1, 99}, true);
    d.add(a, Occurrence{2, 20}, true);
    d.add(a, Occurrence{1, 5}, false);
    d.group();
    Summary s;
    s.add(1, 5);
    s.add(1, 7);
    ASSERT_TRUE(apply_deltas(s, d.added(a), d.removed(a), 100));
    Summary expected;
    expected.add(1, 7);
    expected.add(1, 10);
    expected.add(2, 20);
    EXPECT_EQ(s, expected);
}

TEST(ApplyDeltas, RemovalOfAnOccurrenceNotStoredAsksForARebuild) {
    DeltaMap d;
    const std::uint32_t a = d.lead("a");
    d.add(a, Occurrence{1, 5}, false);
    d.group();
    Summary s;
    s.add(1, 6);
    EXPECT_FALSE(apply_deltas(s, d.added(a), d.removed(a), 100));
}

TEST(ApplyDeltas, SummaryPrunedPastTheScoringTimeAsksForARebuild) {
    DeltaMap d;
    const std::uint32_t a = d.lead("a");
    d.add(a, Occurrence{1, 50}, true);
    d.group();
    Summary s;
    s.add(1, 40);
    s.mark_exact_from(60);
    EXPECT_FALSE(apply_deltas(s, d.added(a), d.removed(a), 59));
    // Exact from 60 on: additions as of 60 or later are applied.
    Summary t;
    t.add(1, 40);
    t.mark_exact_from(60);
    ASSERT_TRUE(apply_deltas(t, d.added(a), d.removed(a), 60));
    EXPECT_EQ(t.occurrences(1).size(), 2u);
}

TEST(ApplyDeltas, RemovingFromAMarkedSummaryAsksForARebuild) {
    // A pruned summary may lack the occurrence being removed: it is never trusted for removals.
    DeltaMap d;
    const std::uint32_t a = d.lead("a");
    d.add(a, Occurrence{1, 70}, false);
    d.group();
    Summary s;
    s.add(1, 70);
    s.mark_exact_from(60);
    EXPECT_FALSE(apply_deltas(s, d.added(a), d.removed(a), 100));
}

TEST(ApplyDeltas, NoDeltasLeaveTheSummaryAsItWas) {
    DeltaMap d;
    const std::uint32_t a = d.lead("a");
    d.add(a, Occurrence{3, 1}, true);
    d.group();
    Summary s;
    s.add(1, 1);
    const std::uint32_t missing = d.lead("b");
    d.group();
    ASSERT_TRUE(apply_deltas(s, d.added(missing), d.removed(missing), 5));
    Summary expected;
    expected.add(1, 1);
    EXPECT_EQ(s, expected);
}
