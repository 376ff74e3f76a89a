#pragma once
#include "guard.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "types.hpp"

namespace leadscore {

// The condition operators of PRODUCT.md.
enum class Op {
    Eq, Ne, Lt, Le, Gt, Ge, Between, In, NotIn, Like, ILike, Regex, RegexI,
    IsNull, IsNotNull, InList, DomainInList
};

// Parses an operator's SQL spelling ("=", "not in", "domain in list" ...), case- and
// space-insensitive for the word operators; nullopt when unknown.
std::optional<Op> parse_op(const std::string& text);
const char* op_name(Op op);
// Text pattern operators only apply to text-like columns.
bool op_is_pattern(Op op);
bool op_uses_list(Op op);
// How many values the operator takes: exact count, or -1 for "one or more".
int op_arity(Op op);
// The comparison operator ("=", "<", ...) the value is compared with, for binary ops.
const char* op_sql_operator(Op op);

// A condition on one column. Values stay as text here; the caller converts them.
struct ConditionSpec {
    std::string attribute;            // empty: no condition
    std::optional<Op> op;
    std::vector<std::optional<std::string>> values;
};

// A row of fit_condition / activity_condition: AND within a group, OR across groups.
struct ConditionRowSpec {
    std::int64_t id = 0;
    std::int32_t grp = 1;
    ConditionSpec condition;
};

// Whether a rule's condition groups hold: true without groups; otherwise when every condition
// of at least one group holds. `conditions` is ordered by (grp, id); holds(i) tests the i-th.
template <class F>
bool groups_hold(const std::vector<ConditionRowSpec>& conditions, F&& holds) {
    if (conditions.empty()) return true;
    std::size_t i = 0;
    while (i < conditions.size()) {
        const std::int32_t grp = conditions[i].grp;
        bool all = true;
        for (; i < conditions.size() && conditions[i].grp == grp; i++)
            if (all && !holds(i)) all = false;
        if (all) return true;
    }
    return false;
}

// Sorts condition rows by (grp, id), the order groups_hold expects.
void order_conditions(std::vector<ConditionRowSpec>& conditions);

struct ActivityRuleSpec {
    std::int64_t id = 0;
    std::string model;
    std::string name;
    std::string activity_type;
    ConditionSpec condition;
    std::vector<ConditionRowSpec> conditions;
    // A numeric column: each counted occurrence is worth points x its value.
    std::string multiply_by;
    MicroPoints points = 0;
    bool once = false;
    std::optional<std::int64_t> max_count;
    std::optional<MicroPoints> max_points;
    std::optional<Interval> expires_after;
    std::optional<Interval> half_life;
    // Time patterns: an occurrence counts only as the min_count-th matching one in the
    // interval [t - within, t] (within unset: ever), then at most one per cooldown.
    std::optional<std::int64_t> min_count;
    std::optional<Interval> within;
    std::optional<Interval> cooldown;
    // A "gone quiet" rule: its points, once, while the latest matching activity is at least
    // this old.
    std::optional<Interval> quiet_for;
    bool disqualify = false;
    bool enabled = true;

    // How many of the most recent counted occurrences may count (nullopt: all).
    std::optional<std::int64_t> occurrence_cap() const;
    bool time_dependent() const { return expires_after.has_value() || half_life.has_value(); }
    // Whether an occurrence's counting depends on the rule's other occurrences.
    bool has_time_pattern() const { return min_count.has_value() || cooldown.has_value(); }
};

struct FitRuleSpec {
    std::int64_t id = 0;
    std::string model;
    std::string name;
    ConditionSpec condition;  // attribute empty: no inline condition
    std::vector<ConditionRowSpec> conditions;
    // A numeric column of the lead or a relation: the rule is worth points x its value.
    std::string multiply_by;
    MicroPoints points = 0;
    bool disqualify = false;
    bool enabled = true;
};

struct StageSpec {
    std::string name;
    std::optional<MicroPoints> min_score;
    std::optional<MicroPoints> min_fit;
    std::optional<MicroPoints> min_engagement;
    bool sticky = false;
};

struct ModelSpec {
    std::string name;
    std::optional<MicroPoints> score_min;
    std::optional<MicroPoints> score_max;
};

// Raw rule fields as written by a user, before validation: the validator checks them
// and names the rule, the column and the problem in its error.
struct RawRuleFields {
    std::string table;                 // activity_rule, fit_rule, activity_condition, fit_condition
    std::string rule_label;            // e.g. rule "demo request" (id 7)
    std::optional<std::string> attribute;
    std::optional<std::string> op;
    std::optional<std::vector<std::optional<std::string>>> values;
    std::optional<std::string> points_text;
    std::optional<std::string> max_points_text;
    std::optional<std::int64_t> max_count;
    std::optional<Interval> expires_after;
    std::optional<Interval> half_life;
    std::optional<std::string> activity_type;
    bool once = false;
    std::optional<std::int64_t> min_count;
    std::optional<Interval> within;
    std::optional<Interval> cooldown;
    std::optional<Interval> quiet_for;
    std::optional<std::string> multiply_by;
};

// Validates the parts of a rule that need no catalog: operator, number of values,
// points, caps, intervals. Throws UserError naming rule, column and problem.
void validate_rule_fields(const RawRuleFields& raw);

// Checks a stage's thresholds; throws UserError.
void validate_stage(const std::string& model, const std::string& stage_name,
                    const std::optional<std::string>& min_score,
                    const std::optional<std::string>& min_fit,
                    const std::optional<std::string>& min_engagement);

// points x value (both in millionths), rounded half away from zero to millionths; throws
// UserError when the product is out of range.
MicroPoints multiply_points(MicroPoints points, MicroPoints value);

// Parses a numeric column of a rule row, throwing UserError naming rule and column.
MicroPoints parse_rule_points(const std::string& rule_label, const std::string& column,
                              const std::string& text);

// Evaluates an operator on one value. Ops supplies the type's own semantics:
//   bool is_null(const V&); bool binary(Op, const V& lhs, const V& rhs);
//   bool in_list(const V&); bool domain_in_list(const V&);
// where binary handles =, <>, <, <=, >, >=, like, ilike, ~, ~*.
template <class V, class Ops>
bool evaluate_condition(Op op, const V& value, const std::vector<V>& operands, Ops& ops) {
    if (op == Op::IsNull) return ops.is_null(value);
    if (op == Op::IsNotNull) return !ops.is_null(value);
    // A NULL attribute matches only "is null".
    if (ops.is_null(value)) return false;
    switch (op) {
        case Op::Between:
            return ops.binary(Op::Ge, value, operands.at(0)) && ops.binary(Op::Le, value, operands.at(1));
        case Op::In:
            for (const V& o : operands)
                if (ops.binary(Op::Eq, value, o)) return true;
            return false;
        case Op::NotIn:
            for (const V& o : operands)
                if (ops.binary(Op::Eq, value, o)) return false;
            return true;
        case Op::InList:
            return ops.in_list(value);
        case Op::DomainInList:
            return ops.domain_in_list(value);
        default:
            return ops.binary(op, value, operands.at(0));
    }
}

// The domain part of an e-mail address: after the last '@', lower-cased; empty when none.
std::string email_domain(const std::string& email);
// "domain in list": the address has an '@' and its email_domain is in sorted_domains (sorted,
// lower-cased).
bool email_domain_in(const std::string& email, const std::vector<std::string>& sorted_domains);

}  // namespace leadscore
