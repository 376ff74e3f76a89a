// Rule validation: any combination of table (rule or condition row), operator, values, points,
// caps, intervals and multiply_by gets either acceptance or a UserError naming the rule and
// the column, never a crash. Condition groups: groups_hold over order_conditions' order is
// "every condition of some group holds" (AND within a group, OR across), asking only for
// conditions it needs. evaluate_condition means what SQL means (a NULL matches only "is
// null"). multiply_points is points x value rounded half away from zero to millionths, or a
// UserError when out of range.
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/decimal.hpp"
#include "core/rules.hpp"
#include "fuzz_common.hpp"

using namespace leadscore;

namespace {
std::optional<std::string> maybe_string(FuzzedDataProvider& in, std::size_t max_len) {
    if (in.ConsumeBool()) return std::nullopt;
    return in.ConsumeRandomLengthString(max_len);
}
std::optional<Interval> maybe_interval(FuzzedDataProvider& in) {
    if (in.ConsumeBool()) return std::nullopt;
    return Interval{in.ConsumeIntegral<std::int32_t>(), in.ConsumeIntegral<std::int32_t>(),
                    in.ConsumeIntegral<std::int64_t>()};
}

void fuzz_validation(FuzzedDataProvider& in) {
    static const char* const kOps[] = {"=", "<>", "<", "<=", ">", ">=", "between", "in", "not in", "like", "ilike",
                                       "~", "~*", "is null", "is not null", "in list", "domain in list", "IN", " = ",
                                       "", "between ", "=="};
    static const char* const kTables[] = {"activity_rule", "fit_rule", "activity_condition", "fit_condition"};
    static const char* const kColumns[] = {"amount", "seats", "account.revenue", "lead.seats", "", "a.b.c"};
    RawRuleFields raw;
    raw.table = kTables[in.ConsumeIntegralInRange<std::size_t>(0, 3)];
    raw.rule_label = "rule \"fuzz\" (id 1)";
    const bool condition_row = raw.table == "activity_condition" || raw.table == "fit_condition";
    if (condition_row) raw.rule_label += " condition 2 (group " + std::to_string(in.ConsumeIntegral<std::int32_t>()) + ")";
    raw.attribute = maybe_string(in, 16);
    if (in.ConsumeBool())
        raw.op = std::string(kOps[in.ConsumeIntegralInRange<std::size_t>(0, sizeof(kOps) / sizeof(kOps[0]) - 1)]);
    else
        raw.op = maybe_string(in, 12);
    if (in.ConsumeBool()) {
        std::vector<std::optional<std::string>> values;
        const std::size_t n = in.ConsumeIntegralInRange<std::size_t>(0, 5);
        for (std::size_t i = 0; i < n; i++) values.push_back(maybe_string(in, 24));
        raw.values = values;
    }
    raw.points_text = maybe_string(in, 30);
    raw.max_points_text = maybe_string(in, 30);
    if (in.ConsumeBool()) raw.max_count = in.ConsumeIntegral<std::int64_t>();
    raw.expires_after = maybe_interval(in);
    raw.half_life = maybe_interval(in);
    raw.activity_type = maybe_string(in, 16);
    raw.once = in.ConsumeBool();
    if (in.ConsumeBool()) raw.min_count = in.ConsumeIntegral<std::int64_t>();
    raw.within = maybe_interval(in);
    raw.cooldown = maybe_interval(in);
    raw.quiet_for = maybe_interval(in);
    switch (in.ConsumeIntegralInRange<int>(0, 2)) {
        case 0: break;
        case 1: raw.multiply_by = std::string(kColumns[in.ConsumeIntegralInRange<std::size_t>(0, 5)]); break;
        default: raw.multiply_by = in.ConsumeRandomLengthString(16); break;
    }

    bool accepted = true;
    try {
        validate_rule_fields(raw);
    } catch (const UserError& e) {
        accepted = false;
        // The error names the table, the rule (and condition) and the column.
        const std::string prefix = raw.table + " " + raw.rule_label + ": column \"";
        FUZZ_CHECK(std::string(e.what()).compare(0, prefix.size(), prefix) == 0);
        FUZZ_CHECK(!e.sqlstate().empty());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "unexpected exception: %s\n", e.what());
        std::abort();
    }
    if (accepted && raw.op) {
        // An accepted operator is a known one, and its value count fits its arity.
        auto op = parse_op(*raw.op);
        FUZZ_CHECK(op.has_value());
        const int arity = op_arity(*op);
        const std::size_t n = raw.values ? raw.values->size() : 0;
        if (arity >= 0) FUZZ_CHECK(static_cast<int>(n) == arity || (arity == 0 && n == 0));
        if (arity < 0) FUZZ_CHECK(n >= 1);
    }
    // An accepted condition row tests a named column with an operator; a rule row has points.
    if (accepted && condition_row) FUZZ_CHECK(raw.attribute && !raw.attribute->empty() && raw.op);
    if (accepted && !condition_row) FUZZ_CHECK(raw.points_text.has_value());
    if (accepted && raw.table == "activity_rule") FUZZ_CHECK(raw.activity_type && !raw.activity_type->empty());
    // An accepted multiplier names a column and comes without the time patterns it excludes.
    if (accepted && raw.multiply_by)
        FUZZ_CHECK(!raw.multiply_by->empty() && !raw.min_count && !raw.cooldown && !raw.quiet_for);
    // An accepted gone-quiet rule has none of the fields it cannot be combined with.
    if (accepted && raw.quiet_for && raw.table == "activity_rule")
        FUZZ_CHECK(!raw.once && !raw.max_count && !raw.max_points_text && !raw.expires_after && !raw.half_life &&
                   !raw.min_count && !raw.cooldown);
    if (accepted && raw.within) FUZZ_CHECK(raw.min_count.has_value());
    if (accepted && raw.points_text)
        expect_ok_or_user_error([&] { (void)parse_rule_points(raw.rule_label, "points", *raw.points_text); });
}

// AND within a group, OR across groups, over rows in any order: order_conditions sorts them
// by (grp, id) and groups_hold then agrees with the definition.
void fuzz_groups(FuzzedDataProvider& in) {
    const std::size_t n = in.ConsumeIntegralInRange<std::size_t>(0, 12);
    std::vector<ConditionRowSpec> rows;
    std::map<std::int64_t, bool> truth;  // by id (ids are unique, as in the tables)
    for (std::size_t i = 0; i < n; i++) {
        ConditionRowSpec r;
        r.id = static_cast<std::int64_t>(i) * 7919 % 101 - 50 + static_cast<std::int64_t>(i) * 1000 *
               (in.ConsumeBool() ? 1 : -1);
        r.grp = in.ConsumeBool() ? in.ConsumeIntegralInRange<std::int32_t>(-2, 3) : in.ConsumeIntegral<std::int32_t>();
        r.condition.attribute = "c" + std::to_string(i);
        truth[r.id] = in.ConsumeBool();
        rows.push_back(r);
    }
    FUZZ_CHECK(truth.size() == rows.size());
    std::vector<ConditionRowSpec> ordered = rows;
    order_conditions(ordered);
    FUZZ_CHECK(ordered.size() == rows.size());
    for (std::size_t i = 1; i < ordered.size(); i++)
        FUZZ_CHECK(ordered[i - 1].grp < ordered[i].grp ||
                   (ordered[i - 1].grp == ordered[i].grp && ordered[i - 1].id < ordered[i].id));
    for (const auto& r : rows)
        FUZZ_CHECK(std::count_if(ordered.begin(), ordered.end(), [&](const ConditionRowSpec& o) {
                       return o.id == r.id && o.grp == r.grp && o.condition.attribute == r.condition.attribute;
                   }) == 1);
    // The definition: true without rows; else some group has every one of its conditions true.
    bool expected = rows.empty();
    std::map<std::int32_t, bool> group_all;
    for (const auto& r : rows) {
        auto it = group_all.emplace(r.grp, true).first;
        it->second = it->second && truth[r.id];
    }
    for (const auto& [grp, all] : group_all) expected = expected || all;
    std::vector<int> asked(ordered.size(), 0);
    const bool got = groups_hold(ordered, [&](std::size_t i) {
        FUZZ_CHECK(i < ordered.size());
        asked[i]++;
        return truth[ordered[i].id];
    });
    FUZZ_CHECK(got == expected);
    // Each condition is asked at most once; within a group, nothing after a false one; and
    // nothing after the first group that holds.
    bool done = false;
    for (std::size_t i = 0; i < ordered.size();) {
        std::size_t j = i;
        bool falsified = false;
        for (; j < ordered.size() && ordered[j].grp == ordered[i].grp; j++) {
            FUZZ_CHECK(asked[j] <= 1);
            if (done || falsified) FUZZ_CHECK(asked[j] == 0);
            else FUZZ_CHECK(asked[j] == 1);
            if (asked[j] && !truth[ordered[j].id]) falsified = true;
        }
        if (!done && !falsified) done = true;
        i = j;
    }
}

// Integers standing in for a column's values: std::nullopt is SQL NULL.
struct IntOps {
    std::vector<std::int64_t> list;
    bool is_null(const std::optional<std::int64_t>& v) const { return !v; }
    bool binary(Op op, const std::optional<std::int64_t>& l, const std::optional<std::int64_t>& r) const {
        FUZZ_CHECK(l && r);
        switch (op) {
            case Op::Eq: return *l == *r;
            case Op::Ne: return *l != *r;
            case Op::Lt: return *l < *r;
            case Op::Le: return *l <= *r;
            case Op::Gt: return *l > *r;
            case Op::Ge: return *l >= *r;
            default: return (*l ^ *r) % 3 == 0;  // a stand-in for the pattern operators
        }
    }
    bool in_list(const std::optional<std::int64_t>& v) const {
        return std::find(list.begin(), list.end(), *v) != list.end();
    }
    bool domain_in_list(const std::optional<std::int64_t>& v) const { return in_list(std::optional<std::int64_t>(*v / 10)); }
};

void fuzz_evaluate(FuzzedDataProvider& in) {
    const Op op = static_cast<Op>(in.ConsumeIntegralInRange<int>(0, static_cast<int>(Op::DomainInList)));
    IntOps ops;
    for (int i = in.ConsumeIntegralInRange<int>(0, 3); i > 0; i--) ops.list.push_back(in.ConsumeIntegralInRange<std::int64_t>(-5, 5));
    std::optional<std::int64_t> value;
    if (!in.ConsumeBool()) value = in.ConsumeIntegralInRange<std::int64_t>(-60, 60);
    const int arity = op_arity(op);
    const std::size_t n = arity >= 0 ? static_cast<std::size_t>(arity) : in.ConsumeIntegralInRange<std::size_t>(1, 4);
    std::vector<std::optional<std::int64_t>> operands;
    for (std::size_t i = 0; i < n; i++) operands.push_back(in.ConsumeIntegralInRange<std::int64_t>(-60, 60));
    const bool got = evaluate_condition(op, value, operands, ops);
    bool expected = false;
    if (op == Op::IsNull) expected = !value;
    else if (op == Op::IsNotNull) expected = value.has_value();
    else if (!value) expected = false;  // a NULL attribute matches only "is null"
    else if (op == Op::Between) expected = *value >= *operands[0] && *value <= *operands[1];
    else if (op == Op::In || op == Op::NotIn) {
        const bool any = std::any_of(operands.begin(), operands.end(), [&](const auto& o) { return *o == *value; });
        expected = op == Op::In ? any : !any;
    } else if (op == Op::InList) expected = ops.in_list(value);
    else if (op == Op::DomainInList) expected = ops.domain_in_list(value);
    else expected = ops.binary(op, value, operands[0]);
    FUZZ_CHECK(got == expected);
    // "not in" is the negation of "in", "is not null" of "is null", whenever the value is set.
    if (value && (op == Op::In || op == Op::NotIn)) {
        const Op other = op == Op::In ? Op::NotIn : Op::In;
        FUZZ_CHECK(evaluate_condition(other, value, operands, ops) == !got);
    }
}

// points x value in millionths, rounded half away from zero; out of range is a UserError.
void fuzz_multiply(FuzzedDataProvider& in) {
    auto pick = [&]() -> MicroPoints {
        switch (in.ConsumeIntegralInRange<int>(0, 3)) {
            case 0: return in.ConsumeIntegral<MicroPoints>();
            case 1: return in.ConsumeIntegralInRange<MicroPoints>(-kMaxPointsMagnitude, kMaxPointsMagnitude);
            case 2: return in.ConsumeIntegralInRange<MicroPoints>(-3000000, 3000000);
            default: return in.ConsumeIntegralInRange<MicroPoints>(-10, 10) * 500000;  // halves: ties
        }
    };
    const MicroPoints points = pick();
    const MicroPoints value = pick();
    const WideSum product = static_cast<WideSum>(points) * value;  // exact: |product| < 2^126
    MicroPoints got = 0;
    const bool ok = expect_ok_or_user_error([&] { got = multiply_points(points, value); });
    // The exact quotient's magnitude, rounded half away from zero.
    const WideSum magnitude = product < 0 ? -product : product;
    const WideSum rounded_magnitude = (magnitude + kPointScale / 2) / kPointScale;
    const WideSum expected = product < 0 ? -rounded_magnitude : rounded_magnitude;
    const bool in_range = expected <= static_cast<WideSum>(INT64_MAX) && expected >= -static_cast<WideSum>(INT64_MAX);
    FUZZ_CHECK(ok == in_range);
    if (!ok) return;
    FUZZ_CHECK(static_cast<WideSum>(got) == expected);
    // Within half a millionth of the exact product; commutative; odd in each argument.
    const WideSum error = static_cast<WideSum>(got) * kPointScale - product;
    FUZZ_CHECK(error <= kPointScale / 2 && error >= -(kPointScale / 2));
    FUZZ_CHECK(multiply_points(value, points) == got);
    if (points != INT64_MIN) FUZZ_CHECK(multiply_points(-points, value) == -got);
    if (value == kPointScale) FUZZ_CHECK(got == points);
    if (value == 0 || points == 0) FUZZ_CHECK(got == 0);
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider in(data, size);
    fuzz_validation(in);
    fuzz_groups(in);
    fuzz_evaluate(in);
    fuzz_multiply(in);

    const auto min_score = maybe_string(in, 20), min_fit = maybe_string(in, 20), min_eng = maybe_string(in, 20);
    expect_ok_or_user_error([&] { validate_stage("m", "stage", min_score, min_fit, min_eng); });
    (void)email_domain(in.ConsumeRemainingBytesAsString());
    return 0;
}
