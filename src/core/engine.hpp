#pragma once
#include "guard.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "rules.hpp"
#include "summary.hpp"
#include "types.hpp"

namespace leadscore {

// A model's rules as the engine uses them: enabled fit rules, every activity rule (a disabled
// one is matched and its occurrences kept, but never counted), stages in resolution order.
class Model {
public:
    Model(ModelSpec spec, std::vector<ActivityRuleSpec> activity_rules, std::vector<FitRuleSpec> fit_rules,
          std::vector<StageSpec> stages);

    const ModelSpec& spec() const { return spec_; }
    const std::vector<ActivityRuleSpec>& activity_rules() const { return activity_rules_; }
    const std::vector<FitRuleSpec>& fit_rules() const { return fit_rules_; }
    // Highest min_score first (NULL min_score last), then by name.
    const std::vector<StageSpec>& stages() const { return stages_; }
    const ActivityRuleSpec* activity_rule(std::int64_t id) const;
    const FitRuleSpec* fit_rule(std::int64_t id) const;
    // Activity rules for one activity type, in id order.
    const std::vector<std::size_t>& rules_for_type(const std::string& type) const;
    // Rank of a stage: larger means further down the funnel; -1 when unknown.
    int stage_rank(const std::string& name) const;
    const StageSpec* stage(const std::string& name) const;
    MicroPoints clamp(MicroPoints v) const;

private:
    ModelSpec spec_;
    std::vector<ActivityRuleSpec> activity_rules_;
    std::vector<FitRuleSpec> fit_rules_;
    std::vector<StageSpec> stages_;
    std::unordered_map<std::int64_t, std::size_t> activity_index_;
    std::unordered_map<std::int64_t, std::size_t> fit_index_;
    // Activity types (sorted) with their rules' indexes: a model has a handful, so a scan
    // comparing lengths first beats hashing the type of every row.
    std::vector<std::pair<std::string, std::vector<std::size_t>>> by_type_;
};

enum class Family { Fit, Engagement };

struct Contribution {
    std::int64_t rule_id = 0;
    std::string rule_name;
    Family family = Family::Engagement;
    std::int64_t occurrences = 0;   // occurrences counted (1 for a matching fit rule)
    MicroPoints points = 0;         // after caps and decay
    std::optional<Timestamp> next_expiry;
    bool disqualifies = false;
};

struct EngagementResult {
    MicroPoints engagement = 0;
    bool disqualified = false;
    // The earliest time after as_of at which the result can change by time alone.
    std::optional<Timestamp> next_change;
    std::vector<Contribution> contributions;   // filled when details are asked for
};

// The engagement score of a summary as of a time: occurrences after as_of never count; time
// patterns choose which occurrences count; expired ones do not count; caps keep the most
// recent counted occurrences; decay halves points every half-life; max_points limits the
// rule's total magnitude; a quiet rule adds its points while the latest activity is old.
EngagementResult compute_engagement(const Model& model, const Summary& summary, Timestamp as_of,
                                    bool with_details);

// The occurrences of a time-pattern rule (min_count / within, cooldown) that count, in time
// order: each is at least the min_count-th of the rule's occurrences in [t - within, t], and
// none is earlier than the previous counted one plus the cooldown.
std::vector<Timestamp> counting_occurrences(const ActivityRuleSpec& rule, const std::vector<Timestamp>& times);

// Settles a time-pattern rule's counting before `until` (see RuleOccurrences): decides which
// occurrences before it count, keeps those that can still matter and the occurrences a later
// window or cooldown needs, and drops the rest. True when the entry changed.
bool settle_pattern(const ActivityRuleSpec& rule, RuleOccurrences& r, Timestamp until);

// Whether a rule's occurrences (this entry's) matter only as their number: no expiry, decay,
// cap, time pattern, quiet spell or multiply_by values.
bool only_counts(const ActivityRuleSpec& rule, const RuleOccurrences& r);

// Stored summaries drop, as of a watermark at least a day (up to eight) before the scoring
// time, what can never count again, so rows stay small as history grows. The watermark moves
// in whole weeks: a rescore finds an unchanged lead's stored summary equal to its rebuilt one.
// kTimestampMin when as_of is at the ends of the time range (nothing is dropped).
Timestamp prune_watermark(Timestamp as_of);

// Drops the occurrences that count at no time from prune_watermark(as_of) on (expired by
// then, or older than a cap's worth of occurrences by then) and marks the summary exact from
// there; a result for an earlier time, or after a removal, needs the raw rows. Rules unknown
// to the model are kept as they are.
void prune_expired(const Model& model, Summary& summary, Timestamp as_of);

struct FitResult {
    MicroPoints fit = 0;
    bool disqualified = false;
    std::vector<Contribution> contributions;
};

// A fit rule whose conditions hold; a multiply_by rule with its points (points x its value,
// kNoValue without one).
struct FitMatch {
    std::int64_t rule_id = 0;
    MicroPoints value = kNoValue;
};

// Sums the matching fit rules (a multiply_by rule is worth the points of its match).
FitResult compute_fit(const Model& model, const std::vector<FitMatch>& matches);
// The same for rules without values, by id.
FitResult compute_fit(const Model& model, const std::vector<std::int64_t>& matching_rule_ids);
// The fit and disqualification alone (no contributions: nothing allocated), for reading many
// leads' fits; equal to compute_fit's (each rule id once).
FitResult compute_fit_total(const Model& model, const std::vector<FitMatch>& matches);

struct LeadScore {
    MicroPoints score = 0;
    MicroPoints fit = 0;
    MicroPoints engagement = 0;
    bool disqualified = false;
    std::optional<std::string> stage;
    std::optional<Timestamp> next_change;
};

// score = clamp(fit + engagement); the stage is the highest whose thresholds hold.
LeadScore combine_score(const Model& model, MicroPoints fit, bool fit_disqualified,
                        const EngagementResult& engagement);

std::optional<std::string> resolve_stage(const Model& model, MicroPoints score, MicroPoints fit,
                                         MicroPoints engagement, bool disqualified);

// Refresh keeps a sticky stage instead of moving down to a lower one by time alone.
std::optional<std::string> apply_sticky(const Model& model, const std::optional<std::string>& previous,
                                        const std::optional<std::string>& computed, bool disqualified);

}  // namespace leadscore
