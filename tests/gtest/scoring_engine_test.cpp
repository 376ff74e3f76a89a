#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/decimal.hpp"
#include "core/engine.hpp"
#include "core/timecalc.hpp"
#include "test_util.hpp"

using namespace leadscore;
using namespace leadscore_test;

namespace {

const Timestamp kBase = ts(2024, 1, 1);
Timestamp D(double n) { return kBase + static_cast<Timestamp>(n * static_cast<double>(kDay)); }

ActivityRuleSpec rule(std::int64_t id, const std::string& name, MicroPoints points) {
    ActivityRuleSpec r;
    r.id = id;
    r.model = "m";
    r.name = name;
    r.activity_type = name;
    r.points = points;
    return r;
}

FitRuleSpec fit_rule(std::int64_t id, const std::string& name, MicroPoints points, bool disqualify = false) {
    FitRuleSpec r;
    r.id = id;
    r.model = "m";
    r.name = name;
    r.condition.attribute = "job_title";
    r.condition.op = Op::Eq;
    r.condition.values = {name};
    r.points = points;
    r.disqualify = disqualify;
    return r;
}

StageSpec stage(const std::string& name, std::optional<MicroPoints> min_score,
                std::optional<MicroPoints> min_fit = std::nullopt,
                std::optional<MicroPoints> min_engagement = std::nullopt, bool sticky = false) {
    StageSpec s;
    s.name = name;
    s.min_score = min_score;
    s.min_fit = min_fit;
    s.min_engagement = min_engagement;
    s.sticky = sticky;
    return s;
}

Model model_of(std::vector<ActivityRuleSpec> rules, std::vector<FitRuleSpec> fits = {},
               std::vector<StageSpec> stages = {}, std::optional<MicroPoints> lo = std::nullopt,
               std::optional<MicroPoints> hi = std::nullopt) {
    return Model(ModelSpec{"m", lo, hi}, std::move(rules), std::move(fits), std::move(stages));
}

MicroPoints engagement(const Model& m, const Summary& s, Timestamp as_of) {
    return compute_engagement(m, s, as_of, false).engagement;
}

}  // namespace

// ---------------------------------------------------------------- basic sums

TEST(Engine, EmptyHistoryScoresZero) {
    Model m = model_of({rule(1, "open", P(2))}, {}, {stage("IQL", P(20))}, P(0), P(100));
    Summary s;
    EngagementResult e = compute_engagement(m, s, D(0), true);
    EXPECT_EQ(e.engagement, 0);
    EXPECT_FALSE(e.disqualified);
    EXPECT_EQ(e.next_change, std::nullopt);
    EXPECT_TRUE(e.contributions.empty());
    LeadScore ls = combine_score(m, 0, false, e);
    EXPECT_EQ(ls.score, 0);
    EXPECT_EQ(ls.fit, 0);
    EXPECT_EQ(ls.engagement, 0);
    EXPECT_FALSE(ls.disqualified);
    EXPECT_EQ(ls.stage, std::nullopt);
    EXPECT_EQ(ls.next_change, std::nullopt);
}

TEST(Engine, PlainPointsSumEveryOccurrence) {
    Model m = model_of({rule(1, "click", P(5)), rule(2, "visit", 1500000)});
    Summary s;
    s.add(1, D(1));
    s.add(1, D(2));
    s.add(1, D(3));
    s.add(2, D(1));
    s.add(2, D(2));
    EXPECT_EQ(engagement(m, s, D(10)), P(15) + 3000000);  // 3*5 + 2*1.5 = 18
    EXPECT_EQ(format_points(engagement(m, s, D(10))), "18");
}

TEST(Engine, UnknownRuleIdsInSummaryAreIgnored) {
    Model m = model_of({rule(1, "click", P(5))});
    Summary s;
    s.add(1, D(1));
    s.add(99, D(1));
    EngagementResult e = compute_engagement(m, s, D(2), true);
    EXPECT_EQ(e.engagement, P(5));
    ASSERT_EQ(e.contributions.size(), 1u);
    EXPECT_EQ(e.contributions[0].rule_id, 1);
}

TEST(Engine, OnceCountsOnlyOneOccurrence) {
    auto r = rule(1, "newsletter", P(10));
    r.once = true;
    Model m = model_of({r});
    Summary s;
    s.add(1, D(1));
    s.add(1, D(2));
    s.add(1, D(3));
    EngagementResult e = compute_engagement(m, s, D(5), true);
    EXPECT_EQ(e.engagement, P(10));
    ASSERT_EQ(e.contributions.size(), 1u);
    EXPECT_EQ(e.contributions[0].occurrences, 1);
    // once wins over a larger max_count.
    r.max_count = 5;
    Model m2 = model_of({r});
    EXPECT_EQ(engagement(m2, s, D(5)), P(10));
}

TEST(Engine, MaxCountCountsMostRecent) {
    auto r = rule(1, "open", P(2));
    r.max_count = 2;
    Model m = model_of({r});
    Summary s;
    for (int d = 1; d <= 5; d++) s.add(1, D(d));
    EngagementResult e = compute_engagement(m, s, D(10), true);
    EXPECT_EQ(e.engagement, P(4));
    ASSERT_EQ(e.contributions.size(), 1u);
    EXPECT_EQ(e.contributions[0].occurrences, 2);
    // Only one occurrence so far: below the cap.
    EXPECT_EQ(engagement(m, s, D(1)), P(2));
    EXPECT_EQ(engagement(m, s, D(0)), 0);
}

TEST(Engine, MaxPointsLimitsMagnitude) {
    auto pos = rule(1, "click", P(5));
    pos.max_points = P(12);
    auto neg = rule(2, "bounce", -P(5));
    neg.max_points = P(12);
    Model m = model_of({pos, neg});
    Summary s;
    for (int d = 1; d <= 10; d++) s.add(1, D(d));
    EngagementResult e = compute_engagement(m, s, D(20), true);
    EXPECT_EQ(e.engagement, P(12));
    ASSERT_EQ(e.contributions.size(), 1u);
    EXPECT_EQ(e.contributions[0].points, P(12));
    EXPECT_EQ(e.contributions[0].occurrences, 10);

    Summary n;
    for (int d = 1; d <= 10; d++) n.add(2, D(d));
    EXPECT_EQ(engagement(m, n, D(20)), -P(12));

    // Under the cap nothing is cut.
    Summary few;
    few.add(1, D(1));
    few.add(1, D(2));
    few.add(2, D(1));
    EXPECT_EQ(engagement(m, few, D(20)), P(10) - P(5));

    // Both: +12 and -12.
    s.merge(n);
    EXPECT_EQ(engagement(m, s, D(20)), 0);
}

TEST(Engine, NegativePointsWithCaps) {
    auto unsub = rule(1, "unsubscribe", -P(50));
    unsub.once = true;
    auto bounce = rule(2, "bounce", -P(3));
    bounce.max_count = 2;
    auto spam = rule(3, "spam", -P(4));
    spam.max_count = 4;
    spam.max_points = P(10);
    Model m = model_of({unsub, bounce, spam});
    Summary s;
    s.add(1, D(1));
    s.add(1, D(2));
    for (int d = 1; d <= 5; d++) s.add(2, D(d));
    for (int d = 1; d <= 5; d++) s.add(3, D(d));
    // -50 + 2*-3 + max(-16, -10) = -66
    EXPECT_EQ(engagement(m, s, D(6)), -P(66));
}

// ---------------------------------------------------------------- time

TEST(Engine, ExpiryBoundaryIsExclusive) {
    auto r = rule(1, "open", P(2));
    r.expires_after = months(3);
    Model m = model_of({r});
    Summary s;
    const Timestamp t = ts(2024, 1, 15, 9);
    const Timestamp expiry = ts(2024, 4, 15, 9);
    s.add(1, t);
    EngagementResult before = compute_engagement(m, s, expiry - 1, true);
    EXPECT_EQ(before.engagement, P(2));
    EXPECT_EQ(before.next_change, std::optional<Timestamp>(expiry));
    ASSERT_EQ(before.contributions.size(), 1u);
    EXPECT_EQ(before.contributions[0].next_expiry, std::optional<Timestamp>(expiry));

    EngagementResult at = compute_engagement(m, s, expiry, true);
    EXPECT_EQ(at.engagement, 0);
    EXPECT_EQ(at.next_change, std::nullopt);
    EXPECT_TRUE(at.contributions.empty());

    // An occurrence counts at the very instant it happens.
    EXPECT_EQ(engagement(m, s, t), P(2));
    EXPECT_EQ(engagement(m, s, t - 1), 0);
}

TEST(Engine, ExpiryUsesCalendarMonths) {
    // Nov 30 + 3 months = Feb 29 (2024 is a leap year).
    auto r = rule(1, "open", P(2));
    r.expires_after = months(3);
    Model m = model_of({r});
    Summary s;
    s.add(1, ts(2023, 11, 30, 10));
    EngagementResult e = compute_engagement(m, s, ts(2024, 1, 1), false);
    EXPECT_EQ(e.next_change, std::optional<Timestamp>(ts(2024, 2, 29, 10)));
    EXPECT_EQ(engagement(m, s, ts(2024, 2, 29, 9, 59, 59, 999999)), P(2));
    EXPECT_EQ(engagement(m, s, ts(2024, 2, 29, 10)), 0);
}

TEST(Engine, CapsCountOnlyUnexpiredMostRecent) {
    auto r = rule(1, "open", P(5));
    r.max_count = 2;
    r.expires_after = days(10);
    Model m = model_of({r});
    Summary s;
    s.add(1, D(1));
    s.add(1, D(5));
    s.add(1, D(6));
    // All three unexpired: the two most recent (D5, D6) count; next change when D5 expires.
    EngagementResult e7 = compute_engagement(m, s, D(7), true);
    EXPECT_EQ(e7.engagement, P(10));
    EXPECT_EQ(e7.next_change, std::optional<Timestamp>(D(15)));
    ASSERT_EQ(e7.contributions.size(), 1u);
    EXPECT_EQ(e7.contributions[0].occurrences, 2);
    EXPECT_EQ(e7.contributions[0].next_expiry, std::optional<Timestamp>(D(15)));
    // D1 expired at D11: the cap still counts D5 and D6.
    EXPECT_EQ(engagement(m, s, D(12)), P(10));
    // D5 expired: only D6 is left.
    EngagementResult e15 = compute_engagement(m, s, D(15), false);
    EXPECT_EQ(e15.engagement, P(5));
    EXPECT_EQ(e15.next_change, std::optional<Timestamp>(D(16)));
    // Everything expired.
    EngagementResult e16 = compute_engagement(m, s, D(16), false);
    EXPECT_EQ(e16.engagement, 0);
    EXPECT_EQ(e16.next_change, std::nullopt);
}

TEST(Engine, ExpiredOccurrencesDoNotUseUpTheCap) {
    auto r = rule(1, "open", P(5));
    r.max_count = 2;
    r.expires_after = days(10);
    Model m = model_of({r});
    Summary s;
    s.add(1, D(1));
    s.add(1, D(2));
    s.add(1, D(20));
    // At D(21): D1, D2 expired; only D20 counts (not the two oldest).
    EngagementResult e = compute_engagement(m, s, D(21), true);
    EXPECT_EQ(e.engagement, P(5));
    EXPECT_EQ(e.contributions.at(0).occurrences, 1);
    EXPECT_EQ(e.next_change, std::optional<Timestamp>(D(30)));
}

TEST(Engine, OccurrencesAfterAsOfNeverCount) {
    auto r = rule(1, "demo", P(100));
    auto dq = rule(2, "competitor", 0);
    dq.disqualify = true;
    Model m = model_of({r, dq});
    Summary s;
    s.add(1, D(1));
    s.add(1, D(5));
    s.add(1, D(9));
    s.add(2, D(7));
    EngagementResult e = compute_engagement(m, s, D(3), true);
    EXPECT_EQ(e.engagement, P(100));
    EXPECT_FALSE(e.disqualified);  // the disqualifying occurrence is in the future
    EXPECT_EQ(e.next_change, std::optional<Timestamp>(D(5)));
    ASSERT_EQ(e.contributions.size(), 1u);
    EXPECT_EQ(e.contributions[0].occurrences, 1);
    // Before any occurrence.
    EngagementResult e0 = compute_engagement(m, s, D(0), true);
    EXPECT_EQ(e0.engagement, 0);
    EXPECT_EQ(e0.next_change, std::optional<Timestamp>(D(1)));
    EXPECT_TRUE(e0.contributions.empty());
    // Between: the future disqualifying occurrence is the next change.
    EngagementResult e6 = compute_engagement(m, s, D(6), false);
    EXPECT_EQ(e6.engagement, P(200));
    EXPECT_EQ(e6.next_change, std::optional<Timestamp>(D(7)));
    EXPECT_FALSE(e6.disqualified);
    EngagementResult e7 = compute_engagement(m, s, D(7), false);
    EXPECT_TRUE(e7.disqualified);
    EXPECT_EQ(e7.next_change, std::optional<Timestamp>(D(9)));
}

TEST(Engine, NextChangeIsEarliestOfFutureOccurrenceAndExpiry) {
    auto r = rule(1, "open", P(2));
    r.expires_after = days(10);
    Model m = model_of({r});
    Summary s;
    s.add(1, D(1));
    s.add(1, D(20));
    EngagementResult e5 = compute_engagement(m, s, D(5), false);
    EXPECT_EQ(e5.engagement, P(2));
    EXPECT_EQ(e5.next_change, std::optional<Timestamp>(D(11)));
    EngagementResult e12 = compute_engagement(m, s, D(12), false);
    EXPECT_EQ(e12.engagement, 0);
    EXPECT_EQ(e12.next_change, std::optional<Timestamp>(D(20)));
    // Across rules too.
    auto q = rule(2, "visit", P(1));
    Model m2 = model_of({r, q});
    s.add(2, D(8));
    EXPECT_EQ(compute_engagement(m2, s, D(5), false).next_change, std::optional<Timestamp>(D(8)));
}

TEST(Engine, EqualTimestamps) {
    auto r = rule(1, "open", P(3));
    r.max_count = 2;
    r.expires_after = days(1);
    Model m = model_of({r});
    Summary s;
    const Timestamp t = D(2);
    s.add(1, t);
    s.add(1, t);
    s.add(1, t);
    EngagementResult e = compute_engagement(m, s, t, true);  // as_of equal to the occurrences
    EXPECT_EQ(e.engagement, P(6));
    EXPECT_EQ(e.contributions.at(0).occurrences, 2);
    EXPECT_EQ(e.next_change, std::optional<Timestamp>(t + kDay));
    EXPECT_EQ(engagement(m, s, t + kDay - 1), P(6));
    EXPECT_EQ(engagement(m, s, t + kDay), 0);
    EXPECT_EQ(engagement(m, s, t - 1), 0);
    // Equal future occurrences: next change is that time.
    EXPECT_EQ(compute_engagement(m, s, t - 1, false).next_change, std::optional<Timestamp>(t));
}

// ---------------------------------------------------------------- decay

TEST(Engine, HalfLifeHalvesExactly) {
    auto r = rule(1, "visit", P(100));
    r.half_life = days(7);
    Model m = model_of({r});
    Summary s;
    const Timestamp t = ts(2024, 3, 5, 14, 30, 0, 123457);
    s.add(1, t);
    EXPECT_EQ(engagement(m, s, t), P(100));
    EXPECT_EQ(engagement(m, s, t + 7 * kDay), P(50));
    EXPECT_EQ(engagement(m, s, t + 14 * kDay), P(25));
    EXPECT_EQ(engagement(m, s, t + 21 * kDay), 12500000);
    // Between: 100 * 0.5^(1/7) = 90.5723...
    const MicroPoints one_day = engagement(m, s, t + kDay);
    EXPECT_GT(one_day, 90572000);
    EXPECT_LT(one_day, 90573000);
    // Decay changes continuously: the next change is right away.
    EngagementResult e = compute_engagement(m, s, t + kDay, true);
    EXPECT_EQ(e.next_change, std::optional<Timestamp>(t + kDay + 1));
    EXPECT_EQ(e.contributions.at(0).next_expiry, std::nullopt);
}

TEST(Engine, HalfLifeInMonthsUsesThirtyDays) {
    auto r = rule(1, "visit", P(80));
    r.half_life = months(1);
    Model m = model_of({r});
    Summary s;
    s.add(1, ts(2024, 1, 31));
    EXPECT_EQ(engagement(m, s, ts(2024, 3, 1)), P(40));  // Jan 31 + 30 days = Mar 1 (leap year)
    EXPECT_EQ(engagement(m, s, ts(2024, 3, 31)), P(20));
}

TEST(Engine, HalfLifeExactWithOddHalfLifeAndRecentTimestamps) {
    // A half-life that is not a whole number of days or seconds, large point values and
    // timestamps up to year 2200: one half-life still halves exactly.
    for (MicroPoints points : {P(100), P(1000000), -P(1000000000)}) {
        auto r = rule(1, "visit", points);
        r.half_life = Interval{0, 0, 3 * kHour + 7};
        Model m = model_of({r});
        for (Timestamp t : {ts(2024, 6, 1, 0, 0, 0, 33), ts(2024, 6, 1, 0, 0, 0, 100), ts(2030, 1, 1, 1, 1, 1, 1),
                            ts(2200, 1, 1, 0, 0, 0, 77)}) {
            Summary s;
            s.add(1, t);
            EXPECT_EQ(engagement(m, s, t + 3 * kHour + 7), points / 2) << t << " " << points;
            EXPECT_EQ(engagement(m, s, t + 2 * (3 * kHour + 7)), points / 4) << t << " " << points;
        }
    }
}

TEST(Engine, NegativePointsDecay) {
    auto r = rule(1, "bounce", -P(100));
    r.half_life = days(1);
    Model m = model_of({r});
    Summary s;
    s.add(1, D(0));
    EXPECT_EQ(engagement(m, s, D(1)), -P(50));
    EXPECT_EQ(engagement(m, s, D(2)), -P(25));
}

TEST(Engine, DecayedWithMaxCount) {
    auto r = rule(1, "visit", P(100));
    r.half_life = days(7);
    r.max_count = 2;
    Model m = model_of({r});
    Summary s;
    s.add(1, D(0));
    s.add(1, D(7));
    s.add(1, D(14));
    // The two most recent: D14 (age 0) = 100, D7 (age 7d) = 50; D0 does not count.
    EngagementResult e = compute_engagement(m, s, D(14), true);
    EXPECT_EQ(e.engagement, P(150));
    EXPECT_EQ(e.contributions.at(0).occurrences, 2);
    EXPECT_EQ(e.contributions.at(0).points, P(150));
    // A week later: 50 + 25.
    EXPECT_EQ(engagement(m, s, D(21)), P(75));
}

TEST(Engine, DecayedWithMaxPoints) {
    auto r = rule(1, "visit", P(100));
    r.half_life = days(7);
    r.max_points = P(120);
    Model m = model_of({r});
    Summary s;
    s.add(1, D(0));
    s.add(1, D(0));
    s.add(1, D(0));
    EXPECT_EQ(engagement(m, s, D(0)), P(120));   // 300 capped
    EXPECT_EQ(engagement(m, s, D(7)), P(120));   // 150 capped
    EXPECT_EQ(engagement(m, s, D(14)), P(75));   // 75 under the cap
}

TEST(Engine, DecayedToZeroStopsChanging) {
    auto r = rule(1, "visit", P(1));
    r.half_life = days(1);
    Model m = model_of({r});
    Summary s;
    s.add(1, D(0));
    EngagementResult e = compute_engagement(m, s, D(100), true);  // 1e6 * 2^-100 rounds to 0
    EXPECT_EQ(e.engagement, 0);
    EXPECT_EQ(e.next_change, std::nullopt);
    ASSERT_EQ(e.contributions.size(), 1u);
    EXPECT_EQ(e.contributions[0].points, 0);
    EXPECT_EQ(e.contributions[0].occurrences, 1);
}

// ---------------------------------------------------------------- disqualification, fit

TEST(Engine, DisqualifiedByActivityRule) {
    auto dq = rule(5, "competitor visit", -P(1000));
    dq.disqualify = true;
    Model m = model_of({rule(1, "demo", P(100)), dq}, {}, {stage("SQL", P(50))});
    Summary s;
    s.add(1, D(1));
    s.add(5, D(2));
    EngagementResult e = compute_engagement(m, s, D(3), true);
    EXPECT_TRUE(e.disqualified);
    EXPECT_EQ(e.engagement, -P(900));
    ASSERT_EQ(e.contributions.size(), 2u);
    EXPECT_FALSE(e.contributions[0].disqualifies);
    EXPECT_TRUE(e.contributions[1].disqualifies);
    LeadScore ls = combine_score(m, 0, false, e);
    EXPECT_TRUE(ls.disqualified);
    EXPECT_EQ(ls.stage, std::optional<std::string>("disqualified"));
}

TEST(Engine, DisqualifiedByFitRule) {
    Model m = model_of({rule(1, "demo", P(100))},
                       {fit_rule(1, "CEO", P(20)), fit_rule(2, "student", -P(50), true)},
                       {stage("SQL", P(50))});
    FitResult f = compute_fit(m, {1, 2});
    EXPECT_TRUE(f.disqualified);
    EXPECT_EQ(f.fit, -P(30));
    Summary s;
    s.add(1, D(1));
    EngagementResult e = compute_engagement(m, s, D(2), false);
    EXPECT_FALSE(e.disqualified);
    LeadScore ls = combine_score(m, f.fit, f.disqualified, e);
    EXPECT_TRUE(ls.disqualified);
    EXPECT_EQ(ls.score, P(70));
    EXPECT_EQ(ls.stage, std::optional<std::string>("disqualified"));
    // Without the disqualifying match the lead would be SQL.
    FitResult f2 = compute_fit(m, std::vector<std::int64_t>{1});
    EXPECT_FALSE(f2.disqualified);
    EXPECT_EQ(combine_score(m, f2.fit, f2.disqualified, e).stage, std::optional<std::string>("SQL"));
}

TEST(Engine, ComputeFitSumsDeduplicatesAndDescribes) {
    Model m = model_of({}, {fit_rule(3, "Germany", P(10)), fit_rule(1, "CEO", P(20)), fit_rule(2, "enterprise", 7500000)});
    FitResult f = compute_fit(m, {3, 1, 3, 1, 42});  // duplicates and an unknown id
    EXPECT_EQ(f.fit, P(30));
    EXPECT_FALSE(f.disqualified);
    ASSERT_EQ(f.contributions.size(), 2u);
    EXPECT_EQ(f.contributions[0].rule_id, 1);
    EXPECT_EQ(f.contributions[0].rule_name, "CEO");
    EXPECT_EQ(f.contributions[0].family, Family::Fit);
    EXPECT_EQ(f.contributions[0].occurrences, 1);
    EXPECT_EQ(f.contributions[0].points, P(20));
    EXPECT_EQ(f.contributions[1].rule_id, 3);
    EXPECT_EQ(f.contributions[1].points, P(10));
    EXPECT_EQ(compute_fit(m, std::vector<std::int64_t>{}).fit, 0);
    EXPECT_EQ(compute_fit(m, {1, 2, 3}).fit, 37500000);
}

TEST(Engine, DisabledRulesIgnored) {
    auto off = rule(2, "webinar", P(50));
    off.enabled = false;
    auto off_dq = rule(3, "competitor", 0);
    off_dq.disqualify = true;
    off_dq.enabled = false;
    auto off_fit = fit_rule(2, "student", -P(40), true);
    off_fit.enabled = false;
    Model m = model_of({rule(1, "demo", P(100)), off, off_dq}, {fit_rule(1, "CEO", P(20)), off_fit});
    // Disabled activity rules are kept (matched, never counted); disabled fit rules are not.
    EXPECT_EQ(m.activity_rules().size(), 3u);
    EXPECT_EQ(m.fit_rules().size(), 1u);
    ASSERT_NE(m.activity_rule(2), nullptr);
    EXPECT_FALSE(m.activity_rule(2)->enabled);
    ASSERT_NE(m.activity_rule(3), nullptr);
    EXPECT_FALSE(m.activity_rule(3)->enabled);
    EXPECT_EQ(m.fit_rule(2), nullptr);
    ASSERT_NE(m.activity_rule(1), nullptr);
    EXPECT_EQ(m.activity_rule(1)->name, "demo");
    EXPECT_EQ(m.rules_for_type("webinar"), (std::vector<std::size_t>{1}));
    EXPECT_EQ(m.rules_for_type("demo"), (std::vector<std::size_t>{0}));

    Summary s;
    s.add(1, D(1));
    s.add(2, D(1));
    s.add(3, D(1));
    EngagementResult e = compute_engagement(m, s, D(2), true);
    EXPECT_EQ(e.engagement, P(100));
    EXPECT_FALSE(e.disqualified);
    EXPECT_EQ(e.contributions.size(), 1u);
    FitResult f = compute_fit(m, {1, 2});
    EXPECT_EQ(f.fit, P(20));
    EXPECT_FALSE(f.disqualified);
}

TEST(Engine, ModelIndexesRulesByIdAndType) {
    auto a = rule(7, "open", P(1));
    auto b = rule(3, "open", P(2));
    auto c = rule(5, "click", P(3));
    Model m = model_of({a, b, c});
    EXPECT_EQ(m.activity_rules()[0].id, 3);
    EXPECT_EQ(m.activity_rules()[1].id, 5);
    EXPECT_EQ(m.activity_rules()[2].id, 7);
    // Rules for a type in id order (indexes into activity_rules()).
    EXPECT_EQ(m.rules_for_type("open"), (std::vector<std::size_t>{0, 2}));
    EXPECT_EQ(m.rules_for_type("click"), (std::vector<std::size_t>{1}));
    EXPECT_TRUE(m.rules_for_type("nothing").empty());
}

TEST(Engine, SumOutOfRangeThrows) {
    auto huge = rule(1, "whale", kMaxPointsMagnitude);
    Model m = model_of({huge});
    Summary s;
    for (int d = 1; d <= 10; d++) s.add(1, D(d));
    try {
        compute_engagement(m, s, D(20), false);
        FAIL() << "expected out of range";
    } catch (const UserError& e) {
        EXPECT_EQ(e.sqlstate(), sqlstate::kNumericValueOutOfRange);
    }
    huge.max_points = kMaxPointsMagnitude;
    Model capped = model_of({huge});
    EXPECT_EQ(engagement(capped, s, D(20)), kMaxPointsMagnitude);
}

// ---------------------------------------------------------------- clamping

TEST(Engine, ClampToScoreBounds) {
    Model m = model_of({rule(1, "demo", P(100))}, {}, {}, P(0), P(100));
    EXPECT_EQ(m.clamp(P(150)), P(100));
    EXPECT_EQ(m.clamp(-P(5)), 0);
    EXPECT_EQ(m.clamp(P(42)), P(42));
    EXPECT_EQ(m.clamp(P(100)), P(100));
    Summary s;
    s.add(1, D(1));
    s.add(1, D(2));
    EngagementResult e = compute_engagement(m, s, D(3), false);
    LeadScore hi = combine_score(m, P(20), false, e);
    EXPECT_EQ(hi.score, P(100));
    EXPECT_EQ(hi.fit, P(20));          // components are not clamped
    EXPECT_EQ(hi.engagement, P(200));
    LeadScore lo = combine_score(m, -P(1000), false, e);
    EXPECT_EQ(lo.score, 0);
    EXPECT_EQ(lo.fit, -P(1000));
}

TEST(Engine, NullBoundsAreUnbounded) {
    Model none = model_of({}, {}, {}, std::nullopt, std::nullopt);
    EXPECT_EQ(none.clamp(-P(5000)), -P(5000));
    EXPECT_EQ(none.clamp(P(5000)), P(5000));
    Model lower_only = model_of({}, {}, {}, P(0), std::nullopt);
    EXPECT_EQ(lower_only.clamp(-P(1)), 0);
    EXPECT_EQ(lower_only.clamp(P(1000000)), P(1000000));
    Model upper_only = model_of({}, {}, {}, std::nullopt, P(1000));
    EXPECT_EQ(upper_only.clamp(-P(1000000)), -P(1000000));
    EXPECT_EQ(upper_only.clamp(P(1001)), P(1000));
    EngagementResult e;
    e.engagement = P(3000);
    EXPECT_EQ(combine_score(none, -P(500), false, e).score, P(2500));
}

// ---------------------------------------------------------------- stages

namespace {
Model funnel_model() {
    // Given in a scrambled order; the model sorts them.
    return model_of({}, {}, {stage("SQL", P(65), P(20)), stage("IQL", P(20)), stage("MQL", P(40))});
}
}  // namespace

TEST(Stages, SortedHighestMinScoreFirst) {
    Model m = model_of({}, {},
                       {stage("IQL", P(20)), stage("ICP", std::nullopt, P(50)), stage("SQL", P(65)),
                        stage("B", P(40)), stage("A", P(40))});
    ASSERT_EQ(m.stages().size(), 5u);
    EXPECT_EQ(m.stages()[0].name, "SQL");
    EXPECT_EQ(m.stages()[1].name, "A");  // equal min_score: by name
    EXPECT_EQ(m.stages()[2].name, "B");
    EXPECT_EQ(m.stages()[3].name, "IQL");
    EXPECT_EQ(m.stages()[4].name, "ICP");  // NULL min_score last
    EXPECT_EQ(m.stage_rank("SQL"), 5);
    EXPECT_EQ(m.stage_rank("ICP"), 1);
    EXPECT_EQ(m.stage_rank("nope"), -1);
    EXPECT_EQ(m.stage("nope"), nullptr);
    ASSERT_NE(m.stage("ICP"), nullptr);
    EXPECT_EQ(m.stage("ICP")->min_fit, std::optional<MicroPoints>(P(50)));
}

TEST(Stages, HighestMinScoreMet) {
    Model m = funnel_model();
    EXPECT_EQ(resolve_stage(m, P(10), P(0), P(10), false), std::nullopt);
    EXPECT_EQ(resolve_stage(m, P(20), P(0), P(20), false), std::optional<std::string>("IQL"));  // exactly at
    EXPECT_EQ(resolve_stage(m, P(39), P(0), P(39), false), std::optional<std::string>("IQL"));
    EXPECT_EQ(resolve_stage(m, P(40), P(0), P(40), false), std::optional<std::string>("MQL"));
    EXPECT_EQ(resolve_stage(m, P(65), P(20), P(45), false), std::optional<std::string>("SQL"));
    EXPECT_EQ(resolve_stage(m, P(100), P(30), P(70), false), std::optional<std::string>("SQL"));
    EXPECT_EQ(resolve_stage(m, 19999999, P(0), P(0), false), std::nullopt);
}

TEST(Stages, HotButIllFittingLeadIsNotSql) {
    Model m = funnel_model();
    // Score 90 from engagement only: fit 0 < 20, so not SQL but MQL.
    EXPECT_EQ(resolve_stage(m, P(90), P(0), P(90), false), std::optional<std::string>("MQL"));
    EXPECT_EQ(resolve_stage(m, P(90), 19999999, P(70), false), std::optional<std::string>("MQL"));
    // min_engagement checked separately as well.
    Model e = model_of({}, {}, {stage("Engaged", P(50), std::nullopt, P(30)), stage("Known", P(10))});
    EXPECT_EQ(resolve_stage(e, P(60), P(50), P(10), false), std::optional<std::string>("Known"));
    EXPECT_EQ(resolve_stage(e, P(60), P(30), P(30), false), std::optional<std::string>("Engaged"));
}

TEST(Stages, NullThresholdsAreNotChecked) {
    // A stage with only a fit threshold; and a catch-all stage with no thresholds at all.
    Model m = model_of({}, {}, {stage("ICP", std::nullopt, P(50)), stage("MQL", P(40))});
    EXPECT_EQ(resolve_stage(m, -P(100), P(50), -P(150), false), std::optional<std::string>("ICP"));
    EXPECT_EQ(resolve_stage(m, P(45), P(0), P(45), false), std::optional<std::string>("MQL"));
    EXPECT_EQ(resolve_stage(m, P(0), P(0), P(0), false), std::nullopt);
    Model all = model_of({}, {}, {stage("cold", std::nullopt), stage("warm", P(10))});
    EXPECT_EQ(resolve_stage(all, -P(1000), -P(1000), 0, false), std::optional<std::string>("cold"));
    EXPECT_EQ(resolve_stage(all, P(10), 0, P(10), false), std::optional<std::string>("warm"));
}

TEST(Stages, DisqualifiedOverridesAndNoStagesGivesNull) {
    Model m = funnel_model();
    EXPECT_EQ(resolve_stage(m, P(100), P(100), P(0), true), std::optional<std::string>("disqualified"));
    EXPECT_EQ(resolve_stage(m, P(0), P(0), P(0), true), std::optional<std::string>("disqualified"));
    Model none = model_of({});
    EXPECT_EQ(resolve_stage(none, P(1000), P(1000), P(1000), false), std::nullopt);
}

TEST(Stages, ResolvedOnClampedScore) {
    Model m = model_of({rule(1, "demo", P(100))}, {}, {stage("SQL", P(100))}, P(0), P(80));
    Summary s;
    s.add(1, D(1));
    LeadScore ls = combine_score(m, 0, false, compute_engagement(m, s, D(2), false));
    EXPECT_EQ(ls.score, P(80));
    EXPECT_EQ(ls.stage, std::nullopt);  // 100 before clamping, 80 after
}

TEST(Stages, ApplySticky) {
    Model m = model_of({}, {}, {stage("IQL", P(20)), stage("MQL", P(40), std::nullopt, std::nullopt, true), stage("SQL", P(65))});
    using S = std::optional<std::string>;
    // A sticky stage is kept against a downward move...
    EXPECT_EQ(apply_sticky(m, S("MQL"), S("IQL"), false), S("MQL"));
    EXPECT_EQ(apply_sticky(m, S("MQL"), std::nullopt, false), S("MQL"));
    // ...but not against an upward move or no move.
    EXPECT_EQ(apply_sticky(m, S("MQL"), S("SQL"), false), S("SQL"));
    EXPECT_EQ(apply_sticky(m, S("MQL"), S("MQL"), false), S("MQL"));
    // Non-sticky stages move down freely.
    EXPECT_EQ(apply_sticky(m, S("SQL"), S("IQL"), false), S("IQL"));
    EXPECT_EQ(apply_sticky(m, S("SQL"), std::nullopt, false), std::nullopt);
    EXPECT_EQ(apply_sticky(m, S("IQL"), std::nullopt, false), std::nullopt);
    // Disqualification always wins.
    EXPECT_EQ(apply_sticky(m, S("MQL"), S("disqualified"), true), S("disqualified"));
    // No previous stage, or one that no longer exists.
    EXPECT_EQ(apply_sticky(m, std::nullopt, S("IQL"), false), S("IQL"));
    EXPECT_EQ(apply_sticky(m, S("retired"), S("IQL"), false), S("IQL"));
    EXPECT_EQ(apply_sticky(m, S("disqualified"), S("IQL"), false), S("IQL"));
}

// ---------------------------------------------------------------- details

TEST(Engine, ContributionsDescribeEachRule) {
    auto open = rule(1, "e-mail open", P(2));
    open.expires_after = months(3);
    open.max_count = 3;
    auto demo = rule(2, "demo request", P(100));
    Model m = model_of({demo, open});
    Summary s;
    s.add(1, ts(2024, 1, 10));
    s.add(1, ts(2024, 2, 10));
    s.add(1, ts(2024, 3, 10));
    s.add(1, ts(2024, 4, 1));
    s.add(2, ts(2024, 3, 20));
    EngagementResult e = compute_engagement(m, s, ts(2024, 4, 5), true);
    // All four opens unexpired; the three most recent count (Feb 10, Mar 10, Apr 1).
    EXPECT_EQ(e.engagement, P(106));
    // Jan 10 expires on Apr 10 without changing the score; the oldest counted one (Feb 10)
    // expires on May 10.
    EXPECT_EQ(e.next_change, std::optional<Timestamp>(ts(2024, 5, 10)));
    ASSERT_EQ(e.contributions.size(), 2u);
    const Contribution& c0 = e.contributions[0];
    EXPECT_EQ(c0.rule_id, 1);
    EXPECT_EQ(c0.rule_name, "e-mail open");
    EXPECT_EQ(c0.family, Family::Engagement);
    EXPECT_EQ(c0.occurrences, 3);
    EXPECT_EQ(c0.points, P(6));
    EXPECT_EQ(c0.next_expiry, std::optional<Timestamp>(ts(2024, 5, 10)));
    EXPECT_FALSE(c0.disqualifies);
    const Contribution& c1 = e.contributions[1];
    EXPECT_EQ(c1.rule_id, 2);
    EXPECT_EQ(c1.rule_name, "demo request");
    EXPECT_EQ(c1.family, Family::Engagement);
    EXPECT_EQ(c1.occurrences, 1);
    EXPECT_EQ(c1.points, P(100));
    EXPECT_EQ(c1.next_expiry, std::nullopt);
    // Without details the totals are the same and no list is built.
    EngagementResult plain = compute_engagement(m, s, ts(2024, 4, 5), false);
    EXPECT_EQ(plain.engagement, P(106));
    EXPECT_EQ(plain.next_change, e.next_change);
    EXPECT_TRUE(plain.contributions.empty());
    // At Apr 10 nothing changed; at May 10 the Feb 10 open stops counting.
    EXPECT_EQ(engagement(m, s, ts(2024, 4, 10)), P(106));
    EngagementResult may = compute_engagement(m, s, ts(2024, 5, 10), true);
    EXPECT_EQ(may.engagement, P(104));
    EXPECT_EQ(may.contributions.at(0).occurrences, 2);
    EXPECT_EQ(may.next_change, std::optional<Timestamp>(ts(2024, 6, 10)));
}

TEST(Engine, CombineScorePassesNextChange) {
    auto r = rule(1, "open", P(2));
    r.expires_after = days(30);
    Model m = model_of({r}, {fit_rule(1, "CEO", P(20))});
    Summary s;
    s.add(1, D(0));
    FitResult f = compute_fit(m, std::vector<std::int64_t>{1});
    LeadScore ls = combine_score(m, f.fit, f.disqualified, compute_engagement(m, s, D(1), false));
    EXPECT_EQ(ls.score, P(22));
    EXPECT_EQ(ls.next_change, std::optional<Timestamp>(D(30)));
}

// ---------------------------------------------------------------- PRODUCT.md seed examples

TEST(Seed, NewsletterEbookCaseStudyDemoRequest) {
    auto newsletter = rule(1, "newsletter", P(10));
    newsletter.once = true;  // subscribed to the newsletter: once per lead ever
    Model m = model_of({newsletter, rule(2, "ebook", P(10)), rule(3, "case_study", P(25)),
                        rule(4, "demo_request", P(100))});
    Summary s;
    for (std::int64_t id = 1; id <= 4; id++) s.add(id, ts(2024, 5, 1, 12));
    EngagementResult e = compute_engagement(m, s, ts(2024, 5, 2), true);
    EXPECT_EQ(format_points(e.engagement), "145");
    EXPECT_EQ(e.contributions.size(), 4u);
    EXPECT_EQ(e.next_change, std::nullopt);
    // A second newsletter sign-up adds nothing; a second e-book adds 10.
    s.add(1, ts(2024, 5, 1, 13));
    s.add(2, ts(2024, 5, 1, 13));
    EXPECT_EQ(format_points(engagement(m, s, ts(2024, 5, 2))), "155");
}

TEST(Seed, CeoPlusWebinarsGoToSalesOver65) {
    Model m = model_of({rule(10, "webinar", P(10))}, {fit_rule(1, "CEO", P(20))}, {stage("sales", P(65))}, P(0),
                       P(100));
    auto score_with = [&](int webinars, bool ceo) {
        Summary s;
        for (int i = 0; i < webinars; i++) s.add(10, D(i));
        FitResult f = compute_fit(m, ceo ? std::vector<std::int64_t>{1} : std::vector<std::int64_t>{});
        return combine_score(m, f.fit, f.disqualified, compute_engagement(m, s, D(30), false));
    };
    LeadScore four = score_with(4, true);
    EXPECT_EQ(four.score, P(60));
    EXPECT_EQ(four.stage, std::nullopt);
    LeadScore five = score_with(5, true);
    EXPECT_EQ(five.score, P(70));
    EXPECT_EQ(five.fit, P(20));
    EXPECT_EQ(five.engagement, P(50));
    EXPECT_EQ(five.stage, std::optional<std::string>("sales"));
    LeadScore no_ceo = score_with(5, false);
    EXPECT_EQ(no_ceo.score, P(50));
    EXPECT_EQ(no_ceo.stage, std::nullopt);
    LeadScore many = score_with(10, true);
    EXPECT_EQ(many.score, P(100));  // 120 clamped into 0..100
    EXPECT_EQ(many.engagement, P(100));
    EXPECT_EQ(many.stage, std::optional<std::string>("sales"));
}

TEST(Seed, EmailOpenTwoPointsExpiringAfterThreeMonths) {
    auto open = rule(1, "email_open", P(2));
    open.expires_after = months(3);
    Model m = model_of({open});
    Summary s;
    s.add(1, ts(2024, 1, 15, 9));
    s.add(1, ts(2024, 2, 20));
    s.add(1, ts(2024, 3, 10));
    EXPECT_EQ(add_interval(ts(2024, 1, 15, 9), months(3)), ts(2024, 4, 15, 9));

    EngagementResult apr14 = compute_engagement(m, s, ts(2024, 4, 14), false);
    EXPECT_EQ(apr14.engagement, P(6));
    EXPECT_EQ(apr14.next_change, std::optional<Timestamp>(ts(2024, 4, 15, 9)));

    EngagementResult apr15 = compute_engagement(m, s, ts(2024, 4, 15, 9), false);
    EXPECT_EQ(apr15.engagement, P(4));
    EXPECT_EQ(apr15.next_change, std::optional<Timestamp>(ts(2024, 5, 20)));

    EXPECT_EQ(engagement(m, s, ts(2024, 6, 9, 23, 59, 59, 999999)), P(2));
    EngagementResult jun10 = compute_engagement(m, s, ts(2024, 6, 10), false);
    EXPECT_EQ(jun10.engagement, 0);
    EXPECT_EQ(jun10.next_change, std::nullopt);
}
