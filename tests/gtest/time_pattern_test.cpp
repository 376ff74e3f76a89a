// Time patterns (min_count / within, cooldown) and gone-quiet rules: the arithmetic at the
// boundaries, how patterns combine with caps, expiry and pruning, and their validation.
#include <gtest/gtest.h>

#include <optional>
#include <random>
#include <vector>

#include "core/decimal.hpp"
#include "core/deltas.hpp"
#include "core/engine.hpp"
#include "core/rules.hpp"
#include "core/summary.hpp"
#include "test_util.hpp"

using namespace leadscore;
using leadscore_test::days;
using leadscore_test::kDay;
using leadscore_test::months;
using leadscore_test::P;
using leadscore_test::ts;

namespace {

ActivityRuleSpec rule(std::int64_t id, long long points) {
    ActivityRuleSpec r;
    r.id = id;
    r.name = "r" + std::to_string(id);
    r.activity_type = "visit";
    r.points = P(points);
    return r;
}

Model model_of(std::vector<ActivityRuleSpec> rules) {
    return Model(ModelSpec{"m", std::nullopt, std::nullopt}, std::move(rules), {}, {});
}

Summary summary_of(std::int64_t rule_id, const std::vector<Timestamp>& times) {
    Summary s;
    for (Timestamp t : times) s.add(rule_id, t);
    return s;
}

EngagementResult score(const Model& m, const Summary& s, Timestamp as_of) {
    return compute_engagement(m, s, as_of, true);
}

const Timestamp T0 = ts(2026, 3, 1);

}  // namespace

TEST(MinCount, MoreThanOnceCountsFromTheSecondOccurrence) {
    ActivityRuleSpec r = rule(1, 5);
    r.min_count = 2;
    const Model m = model_of({r});
    EXPECT_EQ(score(m, summary_of(1, {T0}), T0 + 10 * kDay).engagement, 0);
    EXPECT_EQ(score(m, summary_of(1, {T0, T0 + kDay}), T0 + 10 * kDay).engagement, P(5));
    EXPECT_EQ(score(m, summary_of(1, {T0, T0 + kDay, T0 + 2 * kDay}), T0 + 10 * kDay).engagement, P(10));
    // Two at the same instant: the second of them is the second.
    const EngagementResult same = score(m, summary_of(1, {T0, T0}), T0);
    EXPECT_EQ(same.engagement, P(5));
    ASSERT_EQ(same.contributions.size(), 1u);
    EXPECT_EQ(same.contributions[0].occurrences, 1);
}

TEST(MinCount, WindowIncludesExactlyWithinBack) {
    ActivityRuleSpec r = rule(1, 10);
    r.min_count = 3;
    r.within = days(7);
    const Model m = model_of({r});
    // The third visit exactly 7 days after the first: [t - 7 days, t] holds all three.
    EXPECT_EQ(score(m, summary_of(1, {T0, T0 + 3 * kDay, T0 + 7 * kDay}), T0 + 30 * kDay).engagement, P(10));
    // One microsecond later the first has left the window.
    EXPECT_EQ(score(m, summary_of(1, {T0, T0 + 3 * kDay, T0 + 7 * kDay + 1}), T0 + 30 * kDay).engagement, 0);
    // A fourth visit inside the window of the second and third counts again.
    EXPECT_EQ(score(m, summary_of(1, {T0, T0 + 3 * kDay, T0 + 7 * kDay + 1, T0 + 8 * kDay}), T0 + 30 * kDay)
                  .engagement,
              P(10));
}

TEST(MinCount, WindowInMonthsUsesTheCalendar) {
    ActivityRuleSpec r = rule(1, 1);
    r.min_count = 2;
    r.within = months(1);
    const Model m = model_of({r});
    // 2026-03-31 minus one month is 2026-02-28 (as PostgreSQL's timestamptz - interval).
    EXPECT_EQ(score(m, summary_of(1, {ts(2026, 2, 28), ts(2026, 3, 31)}), ts(2026, 4, 1)).engagement, P(1));
    EXPECT_EQ(score(m, summary_of(1, {ts(2026, 2, 27), ts(2026, 3, 31)}), ts(2026, 4, 1)).engagement, 0);
}

TEST(MinCount, OnceAfterThreeVisitsInAWeek) {
    ActivityRuleSpec r = rule(1, 20);
    r.min_count = 3;
    r.within = days(7);
    r.once = true;
    const Model m = model_of({r});
    std::vector<Timestamp> visits;
    for (int i = 0; i < 10; i++) visits.push_back(T0 + i * kDay);
    EXPECT_EQ(score(m, summary_of(1, visits), T0 + 30 * kDay).engagement, P(20));
    // Before the third visit nothing counts; the moment it happens is the next change.
    const EngagementResult early = score(m, summary_of(1, visits), T0 + kDay);
    EXPECT_EQ(early.engagement, 0);
    ASSERT_TRUE(early.next_change.has_value());
    EXPECT_EQ(*early.next_change, T0 + 2 * kDay);
}

TEST(Cooldown, NextCountsAtExactlyTheCooldown) {
    ActivityRuleSpec r = rule(1, 3);
    r.cooldown = days(30);
    const Model m = model_of({r});
    // Day 0 counts; day 29 does not; day 30 does (strictly before t + cooldown is skipped).
    const EngagementResult e = score(m, summary_of(1, {T0, T0 + 29 * kDay, T0 + 30 * kDay}), T0 + 60 * kDay);
    EXPECT_EQ(e.engagement, P(6));
    EXPECT_EQ(e.contributions.at(0).occurrences, 2);
    // Skipped occurrences do not start a cooldown: day 59 is 29 days after the counted day 30.
    EXPECT_EQ(score(m, summary_of(1, {T0, T0 + 29 * kDay, T0 + 30 * kDay, T0 + 59 * kDay, T0 + 60 * kDay}),
                    T0 + 90 * kDay)
                  .engagement,
              P(9));
}

TEST(Cooldown, AppliesAfterMinCountAndBeforeCaps) {
    ActivityRuleSpec r = rule(1, 1);
    r.min_count = 2;
    r.cooldown = days(2);
    r.max_count = 2;
    const Model m = model_of({r});
    // Qualifying by min_count: days 1..5; cooldown keeps days 1, 3, 5; max_count keeps 3 and 5.
    const std::vector<Timestamp> times = {T0, T0 + kDay, T0 + 2 * kDay, T0 + 3 * kDay, T0 + 4 * kDay, T0 + 5 * kDay};
    EXPECT_EQ(counting_occurrences(r, times), (std::vector<Timestamp>{T0 + kDay, T0 + 3 * kDay, T0 + 5 * kDay}));
    const EngagementResult e = score(m, summary_of(1, times), T0 + 10 * kDay);
    EXPECT_EQ(e.engagement, P(2));
    EXPECT_EQ(e.contributions.at(0).occurrences, 2);
}

TEST(Cooldown, CountedOccurrencesStillExpire) {
    ActivityRuleSpec r = rule(1, 4);
    r.cooldown = days(10);
    r.expires_after = days(15);
    const Model m = model_of({r});
    const Summary s = summary_of(1, {T0, T0 + 5 * kDay, T0 + 10 * kDay});
    // Counted: day 0 and day 10. At day 14 both count; day 0's expires at day 15.
    const EngagementResult at14 = score(m, s, T0 + 14 * kDay);
    EXPECT_EQ(at14.engagement, P(8));
    EXPECT_EQ(*at14.next_change, T0 + 15 * kDay);
    EXPECT_EQ(score(m, s, T0 + 15 * kDay).engagement, P(4));
    EXPECT_EQ(score(m, s, T0 + 25 * kDay).engagement, 0);
}

TEST(Quiet, PointsWhileTheLatestActivityIsOldEnough) {
    ActivityRuleSpec r = rule(1, -15);
    r.quiet_for = days(30);
    const Model m = model_of({r});
    // No activity at all: nothing.
    EXPECT_EQ(score(m, Summary(), T0).engagement, 0);
    const Summary s = summary_of(1, {T0 - 40 * kDay, T0});
    const EngagementResult recent = score(m, s, T0 + 29 * kDay);
    EXPECT_EQ(recent.engagement, 0);
    ASSERT_TRUE(recent.next_change.has_value());
    EXPECT_EQ(*recent.next_change, T0 + 30 * kDay);
    // Exactly quiet_for after the latest activity it is due.
    const EngagementResult quiet = score(m, s, T0 + 30 * kDay);
    EXPECT_EQ(quiet.engagement, P(-15));
    EXPECT_FALSE(quiet.next_change.has_value());
    ASSERT_EQ(quiet.contributions.size(), 1u);
    EXPECT_EQ(quiet.contributions[0].occurrences, 1);
    // As of a time between the two activities, the earlier one is the latest.
    EXPECT_EQ(score(m, s, T0 - 35 * kDay).engagement, 0);
    EXPECT_EQ(score(m, s, T0 - kDay).engagement, P(-15));
}

TEST(Quiet, AFutureActivityIsANextChange) {
    ActivityRuleSpec r = rule(1, -5);
    r.quiet_for = days(10);
    const Model m = model_of({r});
    const EngagementResult e = score(m, summary_of(1, {T0, T0 + 50 * kDay}), T0 + 20 * kDay);
    EXPECT_EQ(e.engagement, P(-5));
    EXPECT_EQ(*e.next_change, T0 + 50 * kDay);
    EXPECT_EQ(score(m, summary_of(1, {T0, T0 + 50 * kDay}), T0 + 50 * kDay).engagement, 0);
}

TEST(Quiet, PruningKeepsTheLatestOccurrenceBeforeTheWatermark) {
    ActivityRuleSpec r = rule(1, -5);
    r.quiet_for = days(10);
    const Model m = model_of({r});
    std::vector<Timestamp> times;
    for (int i = 0; i < 100; i++) times.push_back(T0 + i * kDay);
    Summary s = summary_of(1, times);
    const Timestamp now = T0 + 200 * kDay;
    prune_expired(m, s, now);
    EXPECT_EQ(s.occurrence_count(), 1u);
    for (Timestamp as_of : {now, now + 5 * kDay, now + 100 * kDay})
        EXPECT_EQ(score(m, s, as_of).engagement, score(m, summary_of(1, times), as_of).engagement);
}

TEST(TimePatterns, PrunedPatternRulesStaySmallAndExact) {
    // Two years of a visit every other day: "2 in 3 days" counts from the second on.
    ActivityRuleSpec r = rule(1, 1);
    r.min_count = 2;
    r.within = days(3);
    r.expires_after = days(5);
    const Model m = model_of({r});
    std::vector<Timestamp> times;
    for (int i = 0; i < 365; i++) times.push_back(T0 + i * 2 * kDay);
    const Summary full = summary_of(1, times);
    Summary s = full;
    const Timestamp now = T0 + 730 * kDay;
    prune_expired(m, s, now);
    // What is left: the counted ones not yet expired by the watermark and a window's worth.
    EXPECT_LE(s.occurrence_count(), 8u);
    for (Timestamp as_of : {now, now + 1 * kDay, now + 3 * kDay, now + 30 * kDay})
        EXPECT_EQ(score(m, s, as_of).engagement, score(m, full, as_of).engagement);
    // A new visit after the watermark is judged against the kept window.
    Summary later = s, later_full = full;
    later.add(1, now + 1 * kDay);
    later_full.add(1, now + 1 * kDay);
    EXPECT_EQ(score(m, later, now + 2 * kDay).engagement, score(m, later_full, now + 2 * kDay).engagement);
    // A backdated visit before the watermark can change what counts after it: not added, the
    // caller rebuilds from raw rows.
    Summary backdated = s;
    const Occurrence old{1, T0 + 3 * kDay};
    EXPECT_FALSE(apply_deltas(backdated, OccurrenceSpan{&old, &old + 1}, OccurrenceSpan{}, now));
}

TEST(TimePatterns, PointsOnlyRulesKeepSettledOccurrencesAsACount) {
    // "More than once", no expiry, decay or cap: only how many counted matters.
    ActivityRuleSpec r = rule(1, 3);
    r.min_count = 2;
    const Model m = model_of({r});
    std::vector<Timestamp> times;
    for (int i = 0; i < 1000; i++) times.push_back(T0 + i * kDay / 2);
    Summary s = summary_of(1, times);
    const Timestamp now = T0 + 700 * kDay;
    prune_expired(m, s, now);
    EXPECT_EQ(s.occurrence_count(), 0u);
    EXPECT_EQ(score(m, s, now).engagement, P(3 * 999));
    // The rank of later ones continues from the dropped count.
    s.add(1, now);
    EXPECT_EQ(score(m, s, now).engagement, P(3 * 1000));
    // Stored and read back, the settled state is the same.
    const std::string bytes = s.serialize();
    const Summary back = Summary::deserialize(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
    EXPECT_TRUE(back == s);
    EXPECT_EQ(back.serialize(), bytes);
}

TEST(TimePatterns, CooldownSurvivesPruning) {
    // One open counted on day 0 with a 30-day cooldown; the watermark falls inside it.
    ActivityRuleSpec r = rule(1, 2);
    r.cooldown = days(30);
    const Model m = model_of({r});
    const std::vector<Timestamp> times = {T0, T0 + 10 * kDay};
    Summary s = summary_of(1, times);
    prune_expired(m, s, T0 + 20 * kDay);
    ASSERT_GT(s.exact_from(), T0 + 10 * kDay);
    s.add(1, T0 + 25 * kDay);   // still inside the cooldown of day 0: does not count
    s.add(1, T0 + 30 * kDay);   // exactly the cooldown: counts
    EXPECT_EQ(score(m, s, T0 + 31 * kDay).engagement, P(4));
}

TEST(TimePatterns, PruningIsExactAndIncrementalEqualsRebuilt) {
    // Property: for random pattern rules and histories, a summary pruned at successive
    // watermarks (with occurrences added after each) scores like the full history at any time
    // from its exact-from mark on, and its bytes equal those of the full history pruned once.
    std::mt19937_64 rng(11);
    int smaller = 0;   // steps where pruning dropped something (guards against a vacuous pass)
    for (int round = 0; round < 400; round++) {
        ActivityRuleSpec r = rule(1, 1 + static_cast<long long>(rng() % 5));
        r.min_count = 1 + static_cast<std::int64_t>(rng() % 4);
        if (rng() % 3) r.within = days(1 + static_cast<std::int32_t>(rng() % 12));
        if (rng() % 2) r.cooldown = days(1 + static_cast<std::int32_t>(rng() % 12));
        switch (rng() % 5) {
            case 0: r.expires_after = days(3 + static_cast<std::int32_t>(rng() % 30)); break;
            case 1: r.half_life = days(5 + static_cast<std::int32_t>(rng() % 20)); break;
            case 2: r.max_count = 1 + static_cast<std::int64_t>(rng() % 3); break;
            case 3: r.once = true; r.expires_after = days(10 + static_cast<std::int32_t>(rng() % 20)); break;
            default: break;
        }
        const Model m = model_of({r});
        std::vector<Timestamp> all;
        Summary live;
        Timestamp clock = T0;
        for (int step = 0; step < 6; step++) {
            // Occurrences arrive at or after the live summary's mark (earlier ones rebuild).
            const int n = static_cast<int>(rng() % 12);
            for (int i = 0; i < n; i++) {
                const Timestamp t = std::max(live.exact_from(), clock - static_cast<Timestamp>(rng() % (9 * kDay)));
                const Occurrence o{1, t};
                ASSERT_TRUE(apply_deltas(live, OccurrenceSpan{&o, &o + 1}, OccurrenceSpan{}, clock));
                all.push_back(t);
            }
            clock += static_cast<Timestamp>(rng() % (20 * kDay));
            prune_expired(m, live, clock);
            Summary rebuilt = summary_of(1, all);
            prune_expired(m, rebuilt, clock);
            ASSERT_EQ(live.serialize(), rebuilt.serialize()) << "round " << round << " step " << step;
            const Summary full = summary_of(1, all);
            if (live.occurrence_count() < all.size()) smaller++;
            for (Timestamp as_of : {clock, clock + kDay, clock + static_cast<Timestamp>(rng() % (40 * kDay))}) {
                const EngagementResult a = score(m, live, as_of), b = score(m, full, as_of);
                ASSERT_EQ(a.engagement, b.engagement) << "round " << round << " step " << step;
                ASSERT_EQ(a.next_change, b.next_change) << "round " << round << " step " << step;
            }
        }
    }
    EXPECT_GT(smaller, 500);
}

TEST(TimePatterns, CountedSetDoesNotDependOnLaterOccurrences) {
    // Property: the occurrences that count up to t are the same whatever happens after t.
    std::mt19937_64 rng(7);
    for (int round = 0; round < 300; round++) {
        ActivityRuleSpec r = rule(1, 1);
        if (rng() % 2) r.min_count = 1 + static_cast<std::int64_t>(rng() % 4);
        if (r.min_count && rng() % 2) r.within = days(1 + static_cast<std::int32_t>(rng() % 10));
        if (!r.min_count || rng() % 2) r.cooldown = days(1 + static_cast<std::int32_t>(rng() % 10));
        std::vector<Timestamp> times;
        const int n = 1 + static_cast<int>(rng() % 30);
        for (int i = 0; i < n; i++) times.push_back(T0 + static_cast<Timestamp>(rng() % (40 * kDay)));
        std::sort(times.begin(), times.end());
        const std::vector<Timestamp> all = counting_occurrences(r, times);
        const std::size_t cut = rng() % (times.size() + 1);
        const std::vector<Timestamp> prefix(times.begin(), times.begin() + static_cast<std::ptrdiff_t>(cut));
        const std::vector<Timestamp> of_prefix = counting_occurrences(r, prefix);
        std::vector<Timestamp> all_upto;
        for (Timestamp t : all)
            if (cut > 0 && t <= prefix.back()) all_upto.push_back(t);
        // Equal times straddling the cut are ranked the same way in both.
        if (cut > 0 && cut < times.size() && times[cut] == prefix.back()) continue;
        EXPECT_EQ(of_prefix, all_upto) << "round " << round;
    }
}

namespace {

RawRuleFields activity_raw() {
    RawRuleFields raw;
    raw.table = "activity_rule";
    raw.rule_label = "\"visits\" (id 4)";
    raw.points_text = "5";
    raw.activity_type = "visit";
    return raw;
}

std::string rejection(const RawRuleFields& raw) {
    try {
        validate_rule_fields(raw);
    } catch (const UserError& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST(TimePatternValidation, RejectsWhatCannotBeMeant) {
    RawRuleFields raw = activity_raw();
    raw.min_count = 0;
    EXPECT_EQ(rejection(raw), "activity_rule \"visits\" (id 4): column \"min_count\" must be at least 1");
    raw = activity_raw();
    raw.within = days(7);
    EXPECT_EQ(rejection(raw), "activity_rule \"visits\" (id 4): column \"within\" needs min_count");
    raw.min_count = 3;
    EXPECT_EQ(rejection(raw), "");
    raw.within = days(0);
    EXPECT_NE(rejection(raw).find("column \"within\" must be a positive interval"), std::string::npos);
    raw = activity_raw();
    raw.cooldown = leadscore::Interval{0, -1, 0};
    EXPECT_NE(rejection(raw).find("column \"cooldown\" must be a positive interval"), std::string::npos);
    raw = activity_raw();
    raw.quiet_for = days(0);
    EXPECT_NE(rejection(raw).find("column \"quiet_for\" must be a positive interval"), std::string::npos);
}

TEST(TimePatternValidation, QuietRulesStandAlone) {
    const char* const columns[] = {"once", "max_count", "max_points", "expires_after", "half_life", "min_count",
                                   "cooldown"};
    for (const char* column : columns) {
        RawRuleFields raw = activity_raw();
        raw.quiet_for = days(30);
        const std::string c = column;
        if (c == "once") raw.once = true;
        if (c == "max_count") raw.max_count = 2;
        if (c == "max_points") raw.max_points_text = "10";
        if (c == "expires_after") raw.expires_after = days(5);
        if (c == "half_life") raw.half_life = days(5);
        if (c == "min_count") raw.min_count = 2;
        if (c == "cooldown") raw.cooldown = days(1);
        EXPECT_EQ(rejection(raw),
                  "activity_rule \"visits\" (id 4): column \"quiet_for\" cannot be combined with " + c);
    }
    RawRuleFields ok = activity_raw();
    ok.quiet_for = days(30);
    EXPECT_EQ(rejection(ok), "");
}
