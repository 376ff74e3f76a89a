#include "rules.hpp"

#include <algorithm>
#include <cctype>

#include "decimal.hpp"
#include "timecalc.hpp"

namespace leadscore {

namespace {

std::string normalize_op(const std::string& text) {
    std::string out;
    bool pending_space = false;
    for (char c : text) {
        if (std::isspace(static_cast<unsigned char>(c))) {
            pending_space = !out.empty();
            continue;
        }
        if (pending_space) out += ' ';
        pending_space = false;
        out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return out;
}

struct OpEntry {
    const char* name;
    Op op;
};

const OpEntry kOps[] = {
    {"=", Op::Eq},          {"<>", Op::Ne},         {"<", Op::Lt},
    {"<=", Op::Le},         {">", Op::Gt},          {">=", Op::Ge},
    {"between", Op::Between}, {"in", Op::In},       {"not in", Op::NotIn},
    {"like", Op::Like},     {"ilike", Op::ILike},   {"~", Op::Regex},
    {"~*", Op::RegexI},     {"is null", Op::IsNull}, {"is not null", Op::IsNotNull},
    {"in list", Op::InList}, {"domain in list", Op::DomainInList},
};

[[noreturn]] void reject(const std::string& sqlstate, const RawRuleFields& raw, const std::string& column,
                         const std::string& problem, const std::string& hint = std::string()) {
    throw UserError(sqlstate, raw.table + " " + raw.rule_label + ": column \"" + column + "\" " + problem,
                    std::string(), hint);
}

}  // namespace

std::optional<Op> parse_op(const std::string& text) {
    std::string n = normalize_op(text);
    if (n == "!=") n = "<>";
    for (const auto& e : kOps)
        if (n == e.name) return e.op;
    return std::nullopt;
}

const char* op_name(Op op) {
    for (const auto& e : kOps)
        if (e.op == op) return e.name;
    return "?";
}

bool op_is_pattern(Op op) {
    return op == Op::Like || op == Op::ILike || op == Op::Regex || op == Op::RegexI;
}

bool op_uses_list(Op op) { return op == Op::InList || op == Op::DomainInList; }

int op_arity(Op op) {
    switch (op) {
        case Op::IsNull:
        case Op::IsNotNull:
            return 0;
        case Op::Between:
            return 2;
        case Op::In:
        case Op::NotIn:
            return -1;
        default:
            return 1;
    }
}

const char* op_sql_operator(Op op) {
    switch (op) {
        case Op::Eq: case Op::In: case Op::NotIn: return "=";
        case Op::Ne: return "<>";
        case Op::Lt: return "<";
        case Op::Le: return "<=";
        case Op::Gt: return ">";
        case Op::Ge: return ">=";
        case Op::Like: return "~~";
        case Op::ILike: return "~~*";
        case Op::Regex: return "~";
        case Op::RegexI: return "~*";
        default: return nullptr;
    }
}

std::optional<std::int64_t> ActivityRuleSpec::occurrence_cap() const {
    std::optional<std::int64_t> cap = max_count;
    if (once && (!cap || *cap > 1)) cap = 1;
    return cap;
}

MicroPoints parse_rule_points(const std::string& rule_label, const std::string& column,
                              const std::string& text) {
    std::string reason;
    auto v = parse_points(text, &reason);
    if (!v)
        throw UserError(sqlstate::kInvalidParameterValue,
                        rule_label + ": column \"" + column + "\" value " + text + " " + reason);
    return *v;
}

void order_conditions(std::vector<ConditionRowSpec>& conditions) {
    std::sort(conditions.begin(), conditions.end(), [](const ConditionRowSpec& a, const ConditionRowSpec& b) {
        return a.grp != b.grp ? a.grp < b.grp : a.id < b.id;
    });
}

MicroPoints multiply_points(MicroPoints points, MicroPoints value) {
    const WideSum product = static_cast<WideSum>(points) * value;
    const WideSum half = kPointScale / 2;
    const WideSum rounded = product >= 0 ? (product + half) / kPointScale : -((-product + half) / kPointScale);
    return narrow_points(rounded, "points x multiply_by");
}

void validate_rule_fields(const RawRuleFields& raw) {
    std::string reason;
    const bool condition_row = raw.table == "activity_condition" || raw.table == "fit_condition";
    if (condition_row) {
        if (!raw.attribute || raw.attribute->empty())
            reject(sqlstate::kInvalidParameterValue, raw, "attribute", "must name the column the condition tests");
        if (!raw.op) reject(sqlstate::kInvalidParameterValue, raw, "op", "must not be null");
    }
    if (raw.multiply_by) {
        if (raw.multiply_by->empty())
            reject(sqlstate::kInvalidParameterValue, raw, "multiply_by", "must name a numeric column or be NULL");
        const std::pair<bool, const char*> excluded[] = {
            {raw.min_count.has_value(), "min_count"},
            {raw.cooldown.has_value(), "cooldown"},
            {raw.quiet_for.has_value(), "quiet_for"},
        };
        for (const auto& [set, column] : excluded)
            if (set)
                reject(sqlstate::kInvalidParameterValue, raw, "multiply_by",
                       std::string("cannot be combined with ") + column,
                       "Time patterns count occurrences; multiply_by weighs each one by a column's value.");
    }
    if (raw.table == "activity_rule") {
        if (!raw.activity_type || raw.activity_type->empty())
            reject(sqlstate::kInvalidParameterValue, raw, "activity_type", "must not be empty");
    }
    if (!raw.points_text && !condition_row)
        reject(sqlstate::kInvalidParameterValue, raw, "points", "must not be null");
    if (raw.points_text && !parse_points(*raw.points_text, &reason))
        reject(sqlstate::kInvalidParameterValue, raw, "points", "value " + *raw.points_text + " " + reason);
    if (raw.max_points_text) {
        auto mp = parse_points(*raw.max_points_text, &reason);
        if (!mp)
            reject(sqlstate::kInvalidParameterValue, raw, "max_points", "value " + *raw.max_points_text + " " + reason);
        if (*mp <= 0) reject(sqlstate::kInvalidParameterValue, raw, "max_points", "must be greater than zero");
    }
    if (raw.max_count && *raw.max_count <= 0)
        reject(sqlstate::kInvalidParameterValue, raw, "max_count", "must be greater than zero");
    if (raw.expires_after && !interval_is_positive(*raw.expires_after))
        reject(sqlstate::kInvalidParameterValue, raw, "expires_after",
               "must be a positive interval (no negative part, not zero)");
    if (raw.half_life && !interval_is_positive(*raw.half_life))
        reject(sqlstate::kInvalidParameterValue, raw, "half_life",
               "must be a positive interval (no negative part, not zero)");
    if (raw.expires_after && raw.half_life)
        reject(sqlstate::kInvalidParameterValue, raw, "half_life",
               "cannot be set together with expires_after", "Use either expiry or decay for one rule.");
    if (raw.min_count && *raw.min_count < 1)
        reject(sqlstate::kInvalidParameterValue, raw, "min_count", "must be at least 1");
    if (raw.within && !raw.min_count)
        reject(sqlstate::kInvalidParameterValue, raw, "within", "needs min_count",
               "within bounds the interval in which min_count matching activities are counted.");
    const char* const kPositive = "must be a positive interval (no negative part, not zero)";
    if (raw.within && !interval_is_positive(*raw.within))
        reject(sqlstate::kInvalidParameterValue, raw, "within", kPositive);
    if (raw.cooldown && !interval_is_positive(*raw.cooldown))
        reject(sqlstate::kInvalidParameterValue, raw, "cooldown", kPositive);
    if (raw.quiet_for) {
        if (!interval_is_positive(*raw.quiet_for))
            reject(sqlstate::kInvalidParameterValue, raw, "quiet_for", kPositive);
        const std::pair<bool, const char*> excluded[] = {
            {raw.once, "once"},
            {raw.max_count.has_value(), "max_count"},
            {raw.max_points_text.has_value(), "max_points"},
            {raw.expires_after.has_value(), "expires_after"},
            {raw.half_life.has_value(), "half_life"},
            {raw.min_count.has_value(), "min_count"},
            {raw.cooldown.has_value(), "cooldown"},
        };
        for (const auto& [set, column] : excluded)
            if (set)
                reject(sqlstate::kInvalidParameterValue, raw, "quiet_for",
                       std::string("cannot be combined with ") + column,
                       "A gone-quiet rule adds its points once while the latest matching activity is old enough.");
    }

    const bool has_attribute = raw.attribute && !raw.attribute->empty();
    if (!has_attribute) {
        if (raw.op) reject(sqlstate::kInvalidParameterValue, raw, "op", "is set but attribute is null");
        if (raw.values && !raw.values->empty())
            reject(sqlstate::kInvalidParameterValue, raw, "value", "is set but attribute is null");
        return;
    }
    if (!raw.op) reject(sqlstate::kInvalidParameterValue, raw, "op", "must be set when attribute is set");
    auto op = parse_op(*raw.op);
    if (!op)
        reject(sqlstate::kInvalidParameterValue, raw, "op", "has unknown operator \"" + *raw.op + "\"",
               "Known operators: =, <>, <, <=, >, >=, between, in, not in, like, ilike, ~, ~*, "
               "is null, is not null, in list, domain in list.");
    const size_t n = raw.values ? raw.values->size() : 0;
    const int arity = op_arity(*op);
    auto count_problem = [&](const std::string& expected) {
        reject(sqlstate::kInvalidParameterValue, raw, "value",
               "must hold " + expected + " for operator \"" + op_name(*op) + "\" (got " + std::to_string(n) + ")");
    };
    if (arity == 0 && n != 0) count_problem("no values");
    if (arity == 1 && n != 1) count_problem("exactly one value");
    if (arity == 2 && n != 2) count_problem("exactly two values");
    if (arity == -1 && n == 0) count_problem("at least one value");
    if (raw.values)
        for (const auto& v : *raw.values)
            if (!v) reject(sqlstate::kInvalidParameterValue, raw, "value", "must not contain NULL elements",
                           "Use the operator \"is null\" to match missing values.");
}

void validate_stage(const std::string& model, const std::string& stage_name,
                    const std::optional<std::string>& min_score,
                    const std::optional<std::string>& min_fit,
                    const std::optional<std::string>& min_engagement) {
    const std::string label = "stage \"" + stage_name + "\" of model \"" + model + "\"";
    if (stage_name.empty())
        throw UserError(sqlstate::kInvalidParameterValue, label + ": column \"name\" must not be empty");
    if (stage_name == "disqualified")
        throw UserError(sqlstate::kInvalidParameterValue,
                        label + ": column \"name\" uses the reserved stage name \"disqualified\"");
    if (min_score) parse_rule_points(label, "min_score", *min_score);
    if (min_fit) parse_rule_points(label, "min_fit", *min_fit);
    if (min_engagement) parse_rule_points(label, "min_engagement", *min_engagement);
}

std::string email_domain(const std::string& email) {
    auto at = email.rfind('@');
    if (at == std::string::npos) return std::string();
    std::string d = email.substr(at + 1);
    while (!d.empty() && std::isspace(static_cast<unsigned char>(d.back()))) d.pop_back();
    std::transform(d.begin(), d.end(), d.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return d;
}

bool email_domain_in(const std::string& email, const std::vector<std::string>& sorted_domains) {
    if (email.find('@') == std::string::npos) return false;
    return std::binary_search(sorted_domains.begin(), sorted_domains.end(), email_domain(email));
}

}  // namespace leadscore
