// Scoring: fuzzed models (points, caps, expiry, decay, max points, time patterns, quiet rules,
// stages, ranges) and occurrence histories. Checks: no crash or undefined behaviour, the
// score stays in the model's range, the details add up to the total, results are
// deterministic, the next change lies in the future, occurrences added in any order give the
// same score, and a pruned summary scores like the full one wherever it is marked exact.
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/decimal.hpp"
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
        rules.push_back(r);
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
    if (!expect_ok_or_user_error([&] { model = std::make_unique<Model>(spec, rules, std::vector<FitRuleSpec>{}, stages); }))
        return 0;

    std::vector<std::pair<std::int64_t, Timestamp>> occurrences;
    const int n_occ = in.ConsumeIntegralInRange<int>(0, 60);
    for (int i = 0; i < n_occ; i++)
        occurrences.emplace_back(in.ConsumeIntegralInRange<std::int64_t>(1, n_rules),
                                 in.ConsumeIntegralInRange<Timestamp>(-kSpan, kSpan));
    const Timestamp as_of = in.ConsumeIntegralInRange<Timestamp>(-kSpan, kSpan);
    const MicroPoints fit = in.ConsumeIntegralInRange<MicroPoints>(-kMaxPoints, kMaxPoints);

    Summary forward, backward;
    for (const auto& [id, t] : occurrences) forward.add(id, t);
    for (auto it = occurrences.rbegin(); it != occurrences.rend(); ++it) backward.add(it->first, it->second);
    FUZZ_CHECK(forward == backward);

    EngagementResult e;
    if (!expect_ok_or_user_error([&] { e = compute_engagement(*model, forward, as_of, true); })) return 0;
    const EngagementResult again = compute_engagement(*model, backward, as_of, false);
    FUZZ_CHECK(again.engagement == e.engagement && again.disqualified == e.disqualified &&
               again.next_change == e.next_change);
    WideSum sum = 0;
    for (const Contribution& c : e.contributions) sum += c.points;
    FUZZ_CHECK(sum == e.engagement);
    if (e.next_change) FUZZ_CHECK(*e.next_change > as_of);

    LeadScore score;
    if (!expect_ok_or_user_error([&] { score = combine_score(*model, fit, false, e); })) return 0;
    if (spec.score_min) FUZZ_CHECK(score.score >= *spec.score_min);
    if (spec.score_max) FUZZ_CHECK(score.score <= *spec.score_max);
    if (score.disqualified) FUZZ_CHECK(e.disqualified);

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
