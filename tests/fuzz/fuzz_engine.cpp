// Scoring: fuzzed models (points, caps, expiry, decay, max points, time patterns, quiet rules,
// multiply_by, stages, ranges, fit rules) and occurrence histories (valued occurrences of
// multiply_by rules). Checks: no crash or undefined behaviour, the score stays in the model's
// range, the details add up to the total, results are deterministic, the next change lies in
// the future, occurrences added in any order give the same score, a pruned summary scores like
// the full one wherever it is marked exact, a multiply_by rule without decay is worth the sum
// of points x value over its counted occurrences (the most recent ones, unexpired, capped by
// max_points), removing a valued occurrence undoes adding it, and the fit score is the sum of
// the matching rules' points (x value for multiply_by rules) in any order.
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/decimal.hpp"
#include "core/deltas.hpp"
#include "core/engine.hpp"
#include "core/timecalc.hpp"
#include "fuzz_common.hpp"

using namespace leadscore;

namespace {
constexpr MicroPoints kMaxPoints = 1000000000000LL * 1000000LL;  // |points| <= 1e12
constexpr Timestamp kSpan = 20LL * 366 * 86400 * 1000000;          // twenty years around 2000

MicroPoints points(FuzzedDataProvider& in) { return in.ConsumeIntegralInRange<MicroPoints>(-kMaxPoints, kMaxPoints); }

std::optional<Interval> positive_interval(FuzzedDataProvider& in) {
    if (in.ConsumeBool()) return std::nullopt;
    Interval iv{in.ConsumeIntegralInRange<std::int32_t>(0, 240), in.ConsumeIntegralInRange<std::int32_t>(0, 3650),
                in.ConsumeIntegralInRange<std::int64_t>(0, 86400LL * 1000000)};
    if (!interval_is_positive(iv)) return std::nullopt;
    return iv;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider in(data, size);
    ModelSpec spec{"m", std::nullopt, std::nullopt};
    if (in.ConsumeBool()) spec.score_min = points(in);
    if (in.ConsumeBool()) spec.score_max = points(in);
    if (spec.score_min && spec.score_max && *spec.score_min > *spec.score_max) std::swap(*spec.score_min, *spec.score_max);

    std::vector<ActivityRuleSpec> rules;
    const int n_rules = in.ConsumeIntegralInRange<int>(1, 5);
    for (int i = 0; i < n_rules; i++) {
        ActivityRuleSpec r;
        r.id = i + 1;
        r.model = "m";
        r.name = "r" + std::to_string(i);
        r.activity_type = "t" + std::to_string(in.ConsumeIntegralInRange<int>(0, 2));
        r.points = points(in);
        r.once = in.ConsumeBool();
        if (in.ConsumeBool()) r.max_count = in.ConsumeIntegralInRange<std::int64_t>(1, 20);
        if (in.ConsumeBool()) r.max_points = in.ConsumeIntegralInRange<MicroPoints>(1, kMaxPoints);
        r.expires_after = positive_interval(in);
        if (!r.expires_after) r.half_life = positive_interval(in);
        r.disqualify = in.ConsumeIntegralInRange<int>(0, 9) == 0;
        if (in.ConsumeBool()) r.min_count = in.ConsumeIntegralInRange<std::int64_t>(1, 6);
        if (r.min_count) r.within = positive_interval(in);
        r.cooldown = positive_interval(in);
        if (in.ConsumeIntegralInRange<int>(0, 4) == 0) {
            // A gone-quiet rule stands alone (validation rejects the other fields with it).
            r.quiet_for = positive_interval(in);
            if (r.quiet_for) {
                r.once = false;
                r.max_count.reset();
                r.max_points.reset();
                r.expires_after.reset();
                r.half_life.reset();
                r.min_count.reset();
                r.within.reset();
                r.cooldown.reset();
            }
        }
        // multiply_by: never with a time pattern or a gone-quiet rule (validation rejects both).
        if (!r.quiet_for && !r.has_time_pattern() && in.ConsumeBool()) r.multiply_by = "amount";
        rules.push_back(r);
    }
    std::vector<FitRuleSpec> fit_rules;
    const int n_fit = in.ConsumeIntegralInRange<int>(0, 3);
    for (int i = 0; i < n_fit; i++) {
        FitRuleSpec f;
        f.id = 100 + i;
        f.model = "m";
        f.name = "f" + std::to_string(i);
        f.points = points(in);
        f.disqualify = in.ConsumeIntegralInRange<int>(0, 9) == 0;
        if (in.ConsumeBool()) f.multiply_by = "seats";
        fit_rules.push_back(f);
    }
    std::vector<StageSpec> stages;
    const int n_stages = in.ConsumeIntegralInRange<int>(0, 3);
    for (int i = 0; i < n_stages; i++) {
        StageSpec s;
        s.name = "s" + std::to_string(i);
        s.min_score = points(in);
        if (in.ConsumeBool()) s.min_fit = points(in);
        if (in.ConsumeBool()) s.min_engagement = points(in);
        s.sticky = in.ConsumeBool();
        stages.push_back(s);
    }
    std::unique_ptr<Model> model;
    if (!expect_ok_or_user_error([&] { model = std::make_unique<Model>(spec, rules, fit_rules, stages); }))
        return 0;

    // (rule id, time, multiply_by value or kNoValue); few distinct times, so ties happen
    std::vector<Occurrence> occurrences;
    const int n_occ = in.ConsumeIntegralInRange<int>(0, 60);
    for (int i = 0; i < n_occ; i++) {
        const std::int64_t id = in.ConsumeIntegralInRange<std::int64_t>(1, n_rules);
        const Timestamp t = in.ConsumeBool() ? in.ConsumeIntegralInRange<Timestamp>(-kSpan, kSpan)
                                             : in.ConsumeIntegralInRange<Timestamp>(0, 3) * kMicrosPerDay;
        MicroPoints value = kNoValue;
        if (!rules[static_cast<std::size_t>(id - 1)].multiply_by.empty())
            value = in.ConsumeBool() ? in.ConsumeIntegralInRange<MicroPoints>(-3000000000LL, 3000000000LL)
                                     : in.ConsumeIntegralInRange<MicroPoints>(-kMaxPoints * 9, kMaxPoints * 9);
        occurrences.push_back(Occurrence{id, t, value});
    }
    const Timestamp as_of = in.ConsumeIntegralInRange<Timestamp>(-kSpan, kSpan);

    Summary forward, backward;
    for (const Occurrence& o : occurrences) forward.add(o.rule_id, o.time, o.value);
    for (auto it = occurrences.rbegin(); it != occurrences.rend(); ++it) backward.add(it->rule_id, it->time, it->value);
    FUZZ_CHECK(forward == backward);

    // Removing a valued occurrence undoes adding it (and a plain one a plain one).
    if (!occurrences.empty()) {
        const Occurrence& o = occurrences[in.ConsumeIntegralInRange<std::size_t>(0, occurrences.size() - 1)];
        Summary without;
        bool skipped = false;
        for (const Occurrence& p : occurrences) {
            if (!skipped && p.rule_id == o.rule_id && p.time == o.time && p.value == o.value) {
                skipped = true;
                continue;
            }
            without.add(p.rule_id, p.time, p.value);
        }
        Summary removed = forward;
        // The other kind of occurrence is not there.
        FUZZ_CHECK(!removed.remove(o.rule_id, o.time, o.value == kNoValue ? 0 : kNoValue));
        FUZZ_CHECK(removed.remove(o.rule_id, o.time, o.value));
        FUZZ_CHECK(removed == without);
        // Through apply_deltas, as a statement's deltas: remove it and add it back.
        const Occurrence one[] = {o};
        FUZZ_CHECK(apply_deltas(removed, OccurrenceSpan{one, one + 1}, OccurrenceSpan{}, as_of));
        FUZZ_CHECK(removed == forward);
    }

    // Fit: each fit rule matches or not; a multiply_by rule's match carries its points
    // (round(points x value, 6), worked out where the value is read).
    std::vector<FitMatch> matches;
    WideSum expected_fit = 0;
    bool expected_fit_dq = false;
    bool fit_ok = true;
    for (const FitRuleSpec& f : fit_rules) {
        if (!in.ConsumeBool()) continue;
        FitMatch m{f.id, kNoValue};
        if (!f.multiply_by.empty()) m.value = in.ConsumeIntegralInRange<MicroPoints>(-3000000000LL, 3000000000LL);
        if (m.value == kNoValue) {
            expected_fit += f.points;
        } else {
            expected_fit += m.value;
        }
        expected_fit_dq = expected_fit_dq || f.disqualify;
        matches.push_back(m);
    }
    MicroPoints fit = 0;
    bool fit_dq = false;
    if (fit_ok && expected_fit <= static_cast<WideSum>(INT64_MAX) && expected_fit >= -static_cast<WideSum>(INT64_MAX)) {
        const FitResult fr = compute_fit(*model, matches);
        FUZZ_CHECK(static_cast<WideSum>(fr.fit) == expected_fit && fr.disqualified == expected_fit_dq);
        WideSum parts = 0;
        for (const Contribution& c : fr.contributions) parts += c.points;
        FUZZ_CHECK(parts == expected_fit && fr.contributions.size() == matches.size());
        std::vector<FitMatch> reversed(matches.rbegin(), matches.rend());
        FUZZ_CHECK(compute_fit(*model, reversed).fit == fr.fit);
        fit = fr.fit;
        fit_dq = fr.disqualified;
    }

    EngagementResult e;
    if (!expect_ok_or_user_error([&] { e = compute_engagement(*model, forward, as_of, true); })) return 0;
    const EngagementResult again = compute_engagement(*model, backward, as_of, false);
    FUZZ_CHECK(again.engagement == e.engagement && again.disqualified == e.disqualified &&
               again.next_change == e.next_change);
    WideSum sum = 0;
    for (const Contribution& c : e.contributions) sum += c.points;
    FUZZ_CHECK(sum == e.engagement);
    if (e.next_change) FUZZ_CHECK(*e.next_change > as_of);
    // A multiply_by rule without decay: the sum of its counted occurrences' own points (at or
    // before as_of, unexpired, the most recent ones by time then points), capped.
    for (const ActivityRuleSpec& r : rules) {
        if (r.multiply_by.empty() || r.half_life) continue;
        std::vector<std::pair<Timestamp, MicroPoints>> counted;
        for (const Occurrence& o : occurrences)
            if (o.rule_id == r.id && o.time <= as_of &&
                (!r.expires_after || add_interval(o.time, *r.expires_after) > as_of))
                counted.emplace_back(o.time, o.value);
        std::sort(counted.begin(), counted.end());
        if (auto cap = r.occurrence_cap(); cap && static_cast<std::int64_t>(counted.size()) > *cap)
            counted.erase(counted.begin(), counted.end() - *cap);
        WideSum expected = 0;
        for (const auto& [t, v] : counted) expected += v;
        if (r.max_points) expected = std::max<WideSum>(-*r.max_points, std::min<WideSum>(*r.max_points, expected));
        const Contribution* c = nullptr;
        for (const Contribution& x : e.contributions)
            if (x.rule_id == r.id) c = &x;
        FUZZ_CHECK(c ? static_cast<WideSum>(c->points) == expected && c->occurrences == static_cast<std::int64_t>(counted.size())
                     : counted.empty());
    }

    LeadScore score;
    if (!expect_ok_or_user_error([&] { score = combine_score(*model, fit, fit_dq, e); })) return 0;
    if (spec.score_min) FUZZ_CHECK(score.score >= *spec.score_min);
    if (spec.score_max) FUZZ_CHECK(score.score <= *spec.score_max);
    if (score.disqualified) FUZZ_CHECK(e.disqualified || fit_dq);

    // Pruned as stored at as_of: the same engagement at every later time it is exact for.
    Summary pruned = forward;
    prune_expired(*model, pruned, as_of);
    const Timestamp later = as_of + in.ConsumeIntegralInRange<Timestamp>(0, kSpan);
    for (Timestamp t : {as_of, later}) {
        if (!pruned.exact_at(t)) continue;
        EngagementResult full, kept;
        if (!expect_ok_or_user_error([&] { full = compute_engagement(*model, forward, t, false); })) continue;
        kept = compute_engagement(*model, pruned, t, false);
        FUZZ_CHECK(kept.engagement == full.engagement && kept.disqualified == full.disqualified &&
                   kept.next_change == full.next_change);
    }
    return 0;
}
