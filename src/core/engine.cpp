#include "engine.hpp"

#include <algorithm>
#include <cmath>

#include "decimal.hpp"
#include "timecalc.hpp"

namespace leadscore {

namespace {
const std::vector<std::size_t> kNoRules;

std::optional<Timestamp> earliest(std::optional<Timestamp> a, std::optional<Timestamp> b) {
    if (!a) return b;
    if (!b) return a;
    return std::min(*a, *b);
}

Interval negated(const Interval& iv) { return Interval{-iv.months, -iv.days, -iv.micros}; }

// A gone-quiet rule as of as_of: its contribution and when that can next change.
void score_quiet_rule(const ActivityRuleSpec& rule, const std::vector<Timestamp>& times, Timestamp as_of,
                      bool with_details, EngagementResult& result, WideSum& total) {
    auto end = std::upper_bound(times.begin(), times.end(), as_of);
    // A later activity ends the quiet spell (or starts the wait for one).
    if (end != times.end()) result.next_change = earliest(result.next_change, *end);
    if (end == times.begin()) return;
    const Timestamp due = add_interval(*(end - 1), *rule.quiet_for);
    if (as_of < due) {
        result.next_change = earliest(result.next_change, due);
        return;
    }
    total += rule.points;
    if (rule.disqualify) result.disqualified = true;
    if (with_details) {
        Contribution c;
        c.rule_id = rule.id;
        c.rule_name = rule.name;
        c.family = Family::Engagement;
        c.occurrences = 1;
        c.points = rule.points;
        c.disqualifies = rule.disqualify;
        result.contributions.push_back(std::move(c));
    }
}
}  // namespace

namespace {

// Appends to `counted` the occurrences of a pattern rule's entry that count from
// decided_until on and before `until`; `counted` already holds the settled ones (the last may
// start a cooldown).
void decide_pattern(const ActivityRuleSpec& rule, const RuleOccurrences& r, std::vector<Timestamp>& counted,
                    Timestamp until = kTimestampMax) {
    const std::vector<Timestamp>& times = r.times;
    std::optional<Timestamp> last_counted;
    if (!counted.empty()) last_counted = counted.back();
    const std::optional<Interval> back = rule.within ? std::optional<Interval>(negated(*rule.within)) : std::nullopt;
    std::size_t i = static_cast<std::size_t>(
        std::lower_bound(times.begin(), times.end(), r.decided_until) - times.begin());
    std::size_t window_start = 0;
    for (; i < times.size() && times[i] < until; i++) {
        const Timestamp t = times[i];
        if (rule.min_count) {
            std::int64_t rank;
            if (back) {
                // Occurrences before t - within have left the window ending at t; a settled
                // entry keeps every occurrence from decided_until - within on, so none is missing.
                const Timestamp from = add_interval(t, *back);
                while (times[window_start] < from) window_start++;
                rank = static_cast<std::int64_t>(i - window_start + 1);
            } else {
                rank = r.earlier + static_cast<std::int64_t>(i + 1);
            }
            // Equal times are ranked in order: of two at once, the second is the second.
            if (rank < *rule.min_count) continue;
        }
        if (rule.cooldown && last_counted && t < add_interval(*last_counted, *rule.cooldown)) continue;
        counted.push_back(t);
        last_counted = t;
    }
}

}  // namespace

std::vector<Timestamp> counting_occurrences(const ActivityRuleSpec& rule, const std::vector<Timestamp>& times) {
    RuleOccurrences r;
    r.times = times;
    std::vector<Timestamp> out;
    out.reserve(times.size());
    decide_pattern(rule, r, out);
    return out;
}

Model::Model(ModelSpec spec, std::vector<ActivityRuleSpec> activity_rules, std::vector<FitRuleSpec> fit_rules,
             std::vector<StageSpec> stages)
    : spec_(std::move(spec)), stages_(std::move(stages)) {
    // Disabled activity rules stay: their occurrences are matched and kept (never counted), so
    // that enabling one again needs no activity rows.
    for (auto& r : activity_rules) activity_rules_.push_back(std::move(r));
    for (auto& r : fit_rules)
        if (r.enabled) fit_rules_.push_back(std::move(r));
    std::sort(activity_rules_.begin(), activity_rules_.end(),
              [](const ActivityRuleSpec& a, const ActivityRuleSpec& b) { return a.id < b.id; });
    std::sort(fit_rules_.begin(), fit_rules_.end(),
              [](const FitRuleSpec& a, const FitRuleSpec& b) { return a.id < b.id; });
    std::sort(stages_.begin(), stages_.end(), [](const StageSpec& a, const StageSpec& b) {
        if (a.min_score.has_value() != b.min_score.has_value()) return a.min_score.has_value();
        if (a.min_score && *a.min_score != *b.min_score) return *a.min_score > *b.min_score;
        return a.name < b.name;
    });
    for (std::size_t i = 0; i < activity_rules_.size(); i++) {
        activity_index_[activity_rules_[i].id] = i;
        const std::string& type = activity_rules_[i].activity_type;
        auto it = std::lower_bound(by_type_.begin(), by_type_.end(), type,
                                   [](const auto& entry, const std::string& t) { return entry.first < t; });
        if (it == by_type_.end() || it->first != type) it = by_type_.insert(it, {type, {}});
        it->second.push_back(i);
    }
    for (std::size_t i = 0; i < fit_rules_.size(); i++) fit_index_[fit_rules_[i].id] = i;
}

const ActivityRuleSpec* Model::activity_rule(std::int64_t id) const {
    auto it = activity_index_.find(id);
    return it == activity_index_.end() ? nullptr : &activity_rules_[it->second];
}

const FitRuleSpec* Model::fit_rule(std::int64_t id) const {
    auto it = fit_index_.find(id);
    return it == fit_index_.end() ? nullptr : &fit_rules_[it->second];
}

const std::vector<std::size_t>& Model::rules_for_type(const std::string& type) const {
    if (by_type_.size() <= 16) {
        for (const auto& [t, rules] : by_type_)
            if (t.size() == type.size() && t == type) return rules;
        return kNoRules;
    }
    auto it = std::lower_bound(by_type_.begin(), by_type_.end(), type,
                               [](const auto& entry, const std::string& t) { return entry.first < t; });
    return it == by_type_.end() || it->first != type ? kNoRules : it->second;
}

int Model::stage_rank(const std::string& name) const {
    for (std::size_t i = 0; i < stages_.size(); i++)
        if (stages_[i].name == name) return static_cast<int>(stages_.size() - i);
    return -1;
}

const StageSpec* Model::stage(const std::string& name) const {
    for (const auto& s : stages_)
        if (s.name == name) return &s;
    return nullptr;
}

MicroPoints Model::clamp(MicroPoints v) const {
    if (spec_.score_min && v < *spec_.score_min) v = *spec_.score_min;
    if (spec_.score_max && v > *spec_.score_max) v = *spec_.score_max;
    return v;
}

bool only_counts(const ActivityRuleSpec& rule, const RuleOccurrences& r) {
    return !rule.quiet_for && !rule.has_time_pattern() && !rule.expires_after && !rule.half_life &&
           !rule.occurrence_cap() && r.values.empty();
}

Timestamp prune_watermark(Timestamp as_of) {
    constexpr std::int64_t kWeek = 7 * kMicrosPerDay;
    // Far from both ends, so the arithmetic below cannot overflow.
    if (as_of <= kTimestampMin / 2 || as_of >= kTimestampMax / 2) return kTimestampMin;
    const std::int64_t t = as_of - kMicrosPerDay;
    const std::int64_t weeks = t >= 0 ? t / kWeek : -((-t + kWeek - 1) / kWeek);
    return weeks * kWeek;
}

namespace {

// More recent occurrences than this after the weekly watermark (a bot's burst): a rule that
// only counts, and a quiet rule, keep only their latest kRecentKept as times. For a lead with a
// steady stream of activities, that puts the mark (before which a transaction must rebuild)
// kRecentKept activities back — seconds for a bot, days for a person.
constexpr std::size_t kRecentKept = 256;

// Where a rule's occurrences are pruned up to: the weekly watermark, or, when more than
// kRecentKept of them lie between it and as_of, the time of the latest occurrence before the
// last kRecentKept. Given the rows, the point only moves forward as occurrences are added, so a
// summary pruned insert by insert and one built from all rows prune to the same point.
Timestamp prune_point(const std::vector<Timestamp>& times, Timestamp watermark, Timestamp as_of) {
    const auto from = std::upper_bound(times.begin(), times.end(), watermark);
    const auto to = std::upper_bound(from, times.end(), as_of);
    if (static_cast<std::size_t>(to - from) <= kRecentKept) return watermark;
    return *(to - static_cast<std::ptrdiff_t>(kRecentKept) - 1);
}

}  // namespace

void prune_expired(const Model& model, Summary& summary, Timestamp as_of) {
    const Timestamp watermark = prune_watermark(as_of);
    if (watermark == kTimestampMin) return;
    // The latest point a rule was pruned up to: the summary is exact from there.
    Timestamp mark = watermark;
    const bool dropped = summary.drop_oldest([&](const RuleOccurrences& r) -> std::size_t {
        const ActivityRuleSpec* rule = model.activity_rule(r.rule_id);
        if (!rule) return 0;
        const std::vector<Timestamp>& times = r.times;
        // A quiet rule needs only the latest occurrence at or before any later as_of.
        if (rule->quiet_for) {
            const Timestamp point = prune_point(times, watermark, as_of);
            const std::size_t upto = std::upper_bound(times.begin(), times.end(), point) - times.begin();
            if (upto > 1 && point > watermark) mark = std::max(mark, point);
            return upto > 1 ? upto - 1 : 0;
        }
        // Pattern rules and rules that only count are settled below instead.
        if (rule->has_time_pattern() || only_counts(*rule, r)) return 0;
        // Expired by the watermark (hence at every later time), as compute_engagement judges it.
        auto kept = times.begin();
        if (rule->expires_after)
            kept = std::partition_point(times.begin(), times.end(), [&](Timestamp t) {
                return add_interval(t, *rule->expires_after) <= watermark;
            });
        // A cap counts the most recent occurrences: of those up to the watermark, older ones
        // than the cap's worth can only come back when an occurrence is removed.
        if (auto cap = rule->occurrence_cap()) {
            const auto upto = std::upper_bound(kept, times.end(), watermark);
            if (upto - kept > *cap) kept = upto - *cap;
        }
        return static_cast<std::size_t>(kept - times.begin());
    });
    bool settled = false;
    for (const std::int64_t id : summary.rule_ids()) {
        const ActivityRuleSpec* rule = model.activity_rule(id);
        if (!rule) continue;
        if (rule->has_time_pattern()) {
            settled |= summary.settle(id, [&](RuleOccurrences& r) { return settle_pattern(*rule, r, watermark); });
            continue;
        }
        // Occurrences of a rule that only counts them matter, once past, as their number: a lead
        // with years of such history keeps a count, not its times.
        settled |= summary.settle(id, [&](RuleOccurrences& r) {
            if (!only_counts(*rule, r)) return false;
            const Timestamp point = prune_point(r.times, watermark, as_of);
            const auto upto = std::upper_bound(r.times.begin(), r.times.end(), point);
            const std::int64_t n = static_cast<std::int64_t>(upto - r.times.begin());
            if (n == 0 && (r.has_decisions() ? r.decided_until >= point : true)) return false;
            r.times.erase(r.times.begin(), upto);
            r.decided_count += n;
            r.decided_until = std::max(r.decided_until, point);
            mark = std::max(mark, point);
            return true;
        });
    }
    // A summary pruned before keeps up with the watermark even when nothing new goes: the
    // stored bytes are then a function of the raw rows and the watermark alone, as a rebuild's
    // (or, for a burst, of the rows and its latest occurrences).
    if (dropped || settled || summary.exact_from() != kTimestampMin) summary.mark_exact_from(mark);
}

bool settle_pattern(const ActivityRuleSpec& rule, RuleOccurrences& r, Timestamp until) {
    if (until <= r.decided_until) return false;
    // Decide up to `until` from the current state, then keep what can still matter after it.
    std::vector<Timestamp> counted = r.decided;
    decide_pattern(rule, r, counted, until);
    const std::optional<Timestamp> last_counted =
        counted.empty() ? std::nullopt : std::optional<Timestamp>(counted.back());
    std::int64_t count = r.decided_count;
    auto kept = counted.begin();
    if (rule.expires_after) {
        kept = std::partition_point(counted.begin(), counted.end(),
                                    [&](Timestamp t) { return add_interval(t, *rule.expires_after) <= until; });
    }
    if (auto cap = rule.occurrence_cap()) {
        if (counted.end() - kept > *cap) kept = counted.end() - *cap;
    }
    const bool only_a_count = !rule.expires_after && !rule.half_life && !rule.occurrence_cap();
    if (only_a_count) {
        // Points per occurrence, no time dependence: settled occurrences matter as a count.
        count += static_cast<std::int64_t>(counted.size());
        kept = counted.end();
    }
    std::vector<Timestamp> decided(kept, counted.end());
    // The last counted one starts a cooldown that may reach past `until`.
    if (rule.cooldown && last_counted && add_interval(*last_counted, *rule.cooldown) > until &&
        (decided.empty() || decided.back() != *last_counted)) {
        decided.push_back(*last_counted);
        if (only_a_count) count--;
    }
    // A later occurrence's window reaches back to until - within; "ever" needs only a count.
    const Timestamp context_from = rule.within ? add_interval(until, negated(*rule.within)) : until;
    const auto first_kept = std::lower_bound(r.times.begin(), r.times.end(), context_from);
    const std::int64_t dropped = static_cast<std::int64_t>(first_kept - r.times.begin());
    const bool changed = dropped > 0 || decided != r.decided || count != r.decided_count || !r.has_decisions();
    r.times.erase(r.times.begin(), first_kept);
    r.earlier += dropped;
    r.decided = std::move(decided);
    r.decided_count = count;
    r.decided_until = until;
    return changed;
}

EngagementResult compute_engagement(const Model& model, const Summary& summary, Timestamp as_of,
                                    bool with_details) {
    EngagementResult result;
    WideSum total = 0;
    for (const RuleOccurrences& r : summary.rules()) {
        const ActivityRuleSpec* rule = model.activity_rule(r.rule_id);
        if (!rule || !rule->enabled) continue;  // deleted since the summary was built, or disabled
        if (rule->quiet_for) {
            score_quiet_rule(*rule, r.times, as_of, with_details, result, total);
            continue;
        }
        // Counting depends only on earlier occurrences, so the counted ones stay counted as
        // as_of moves on: the rest of the rule treats them as its occurrences.
        std::vector<Timestamp> pattern_times;
        // Settled occurrences kept only as their number (pattern rules and rules that only count).
        std::int64_t settled_count = r.decided_count;
        if (rule->has_time_pattern()) {
            pattern_times = r.decided;
            decide_pattern(*rule, r, pattern_times);
        }
        const std::vector<Timestamp>& times = rule->has_time_pattern() ? pattern_times : r.times;
        // Occurrences at or before as_of: those with index < end.
        auto end = std::upper_bound(times.begin(), times.end(), as_of);
        if (end != times.end()) result.next_change = earliest(result.next_change, *end);
        // Unexpired ones start at begin: t + expires_after > as_of.
        auto begin = times.begin();
        if (rule->expires_after) {
            begin = std::partition_point(times.begin(), end, [&](Timestamp t) {
                return add_interval(t, *rule->expires_after) <= as_of;
            });
        }
        // Settled occurrences kept only as a count: the rule has no expiry, decay or cap.
        std::int64_t available = (end - begin) + settled_count;
        std::int64_t counted = available;
        if (auto cap = rule->occurrence_cap()) counted = std::min<std::int64_t>(counted, *cap);
        if (counted == 0) continue;
        // The most recent `counted` occurrences: [end - counted, end) (settled ones aside).
        auto first_counted = end - std::min<std::int64_t>(counted, end - begin);
        WideSum rule_sum = 0;
        bool decaying = false;
        // A multiply_by rule's occurrence carries its own points (points x its value).
        const bool valued = !rule->has_time_pattern() && !r.values.empty();
        auto occurrence_points = [&](std::vector<Timestamp>::const_iterator it) {
            return valued ? r.values[static_cast<std::size_t>(it - times.begin())] : rule->points;
        };
        if (rule->half_life) {
            const double hl = interval_length_micros(*rule->half_life);
            for (auto it = first_counted; it != end; ++it) {
                const double age = static_cast<double>(as_of) - static_cast<double>(*it);
                const double factor = std::pow(0.5, age / hl);
                const MicroPoints p =
                    static_cast<MicroPoints>(std::llround(static_cast<double>(occurrence_points(it)) * factor));
                if (p != 0) decaying = true;
                rule_sum += p;
            }
        } else if (valued) {
            for (auto it = first_counted; it != end; ++it) rule_sum += occurrence_points(it);
        } else {
            rule_sum = static_cast<WideSum>(rule->points) * counted;
        }
        if (rule->max_points) {
            const WideSum cap = *rule->max_points;
            if (rule_sum > cap) rule_sum = cap;
            if (rule_sum < -cap) rule_sum = -cap;
        }
        total += rule_sum;
        std::optional<Timestamp> next_expiry;
        if (rule->expires_after) {
            next_expiry = add_interval(*first_counted, *rule->expires_after);
            result.next_change = earliest(result.next_change, next_expiry);
        }
        // Decayed points change continuously until they round to zero.
        if (decaying && as_of < kTimestampMax) result.next_change = earliest(result.next_change, as_of + 1);
        if (rule->disqualify) result.disqualified = true;
        if (with_details) {
            Contribution c;
            c.rule_id = rule->id;
            c.rule_name = rule->name;
            c.family = Family::Engagement;
            c.occurrences = counted;
            c.points = narrow_points(rule_sum, "rule contribution");
            c.next_expiry = next_expiry;
            c.disqualifies = rule->disqualify;
            result.contributions.push_back(std::move(c));
        }
    }
    result.engagement = narrow_points(total, "engagement score");
    return result;
}

FitResult compute_fit(const Model& model, const std::vector<std::int64_t>& matching_rule_ids) {
    std::vector<FitMatch> matches;
    for (std::int64_t id : matching_rule_ids) matches.push_back(FitMatch{id, kNoValue});
    return compute_fit(model, matches);
}

FitResult compute_fit(const Model& model, const std::vector<FitMatch>& matches) {
    FitResult result;
    WideSum total = 0;
    std::vector<FitMatch> sorted = matches;
    std::sort(sorted.begin(), sorted.end(), [](const FitMatch& a, const FitMatch& b) { return a.rule_id < b.rule_id; });
    sorted.erase(std::unique(sorted.begin(), sorted.end(),
                             [](const FitMatch& a, const FitMatch& b) { return a.rule_id == b.rule_id; }),
                 sorted.end());
    for (const FitMatch& m : sorted) {
        const FitRuleSpec* rule = model.fit_rule(m.rule_id);
        if (!rule) continue;
        const MicroPoints points = m.value == kNoValue ? rule->points : m.value;
        total += points;
        if (rule->disqualify) result.disqualified = true;
        Contribution c;
        c.rule_id = rule->id;
        c.rule_name = rule->name;
        c.family = Family::Fit;
        c.occurrences = 1;
        c.points = points;
        c.disqualifies = rule->disqualify;
        result.contributions.push_back(std::move(c));
    }
    result.fit = narrow_points(total, "fit score");
    return result;
}

FitResult compute_fit_total(const Model& model, const std::vector<FitMatch>& matches) {
    // (Matches in ascending id order, as a lead's rules are read, need no copy to count each once.)
    for (std::size_t i = 1; i < matches.size(); i++)
        if (matches[i].rule_id <= matches[i - 1].rule_id) {
            FitResult full = compute_fit(model, matches);
            full.contributions.clear();
            return full;
        }
    FitResult result;
    WideSum total = 0;
    for (const FitMatch& m : matches) {
        const FitRuleSpec* rule = model.fit_rule(m.rule_id);
        if (!rule) continue;
        total += m.value == kNoValue ? rule->points : m.value;
        if (rule->disqualify) result.disqualified = true;
    }
    result.fit = narrow_points(total, "fit score");
    return result;
}

std::optional<std::string> resolve_stage(const Model& model, MicroPoints score, MicroPoints fit,
                                         MicroPoints engagement, bool disqualified) {
    if (disqualified) return std::string("disqualified");
    for (const auto& s : model.stages()) {
        if (s.min_score && score < *s.min_score) continue;
        if (s.min_fit && fit < *s.min_fit) continue;
        if (s.min_engagement && engagement < *s.min_engagement) continue;
        return s.name;
    }
    return std::nullopt;
}

LeadScore combine_score(const Model& model, MicroPoints fit, bool fit_disqualified,
                        const EngagementResult& engagement) {
    LeadScore s;
    s.fit = fit;
    s.engagement = engagement.engagement;
    s.score = model.clamp(narrow_points(static_cast<WideSum>(fit) + engagement.engagement, "score"));
    s.disqualified = fit_disqualified || engagement.disqualified;
    s.stage = resolve_stage(model, s.score, s.fit, s.engagement, s.disqualified);
    s.next_change = engagement.next_change;
    return s;
}

std::optional<std::string> apply_sticky(const Model& model, const std::optional<std::string>& previous,
                                        const std::optional<std::string>& computed, bool disqualified) {
    if (disqualified || !previous) return computed;
    const StageSpec* prev = model.stage(*previous);
    if (!prev || !prev->sticky) return computed;
    const int prev_rank = model.stage_rank(*previous);
    const int new_rank = computed ? model.stage_rank(*computed) : 0;
    return new_rank < prev_rank ? previous : computed;
}

}  // namespace leadscore
