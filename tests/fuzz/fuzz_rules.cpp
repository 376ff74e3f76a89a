// Rule validation: any combination of operator, values, points, caps and intervals gets
// either acceptance or a UserError naming the problem, never a crash.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
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
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider in(data, size);
    static const char* const kOps[] = {"=", "<>", "<", "<=", ">", ">=", "between", "in", "not in", "like", "ilike",
                                       "~", "~*", "is null", "is not null", "in list", "domain in list", "IN", " = ",
                                       "", "between ", "=="};
    RawRuleFields raw;
    raw.table = in.ConsumeBool() ? "activity_rule" : "fit_rule";
    raw.rule_label = "rule \"fuzz\" (id 1)";
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

    const bool accepted = expect_ok_or_user_error([&] { validate_rule_fields(raw); });
    if (accepted && raw.op) {
        // An accepted operator is a known one, and its value count fits its arity.
        auto op = parse_op(*raw.op);
        FUZZ_CHECK(op.has_value());
        const int arity = op_arity(*op);
        const std::size_t n = raw.values ? raw.values->size() : 0;
        if (arity >= 0) FUZZ_CHECK(static_cast<int>(n) == arity || (arity == 0 && n == 0));
    }
    // An accepted gone-quiet rule has none of the fields it cannot be combined with.
    if (accepted && raw.quiet_for && raw.table == "activity_rule")
        FUZZ_CHECK(!raw.once && !raw.max_count && !raw.max_points_text && !raw.expires_after && !raw.half_life &&
                   !raw.min_count && !raw.cooldown);
    if (accepted && raw.within) FUZZ_CHECK(raw.min_count.has_value());
    if (accepted && raw.points_text)
        expect_ok_or_user_error([&] { (void)parse_rule_points(raw.rule_label, "points", *raw.points_text); });

    const auto min_score = maybe_string(in, 20), min_fit = maybe_string(in, 20), min_eng = maybe_string(in, 20);
    expect_ok_or_user_error([&] { validate_stage("m", "stage", min_score, min_fit, min_eng); });
    (void)email_domain(in.ConsumeRemainingBytesAsString());
    return 0;
}
