#include <set>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/rules.hpp"
#include "test_util.hpp"

using namespace leadscore;
using namespace leadscore_test;

// ---------------------------------------------------------------- parse_op

TEST(ParseOp, EverySpelling) {
    EXPECT_EQ(parse_op("="), Op::Eq);
    EXPECT_EQ(parse_op("<>"), Op::Ne);
    EXPECT_EQ(parse_op("!="), Op::Ne);
    EXPECT_EQ(parse_op("<"), Op::Lt);
    EXPECT_EQ(parse_op("<="), Op::Le);
    EXPECT_EQ(parse_op(">"), Op::Gt);
    EXPECT_EQ(parse_op(">="), Op::Ge);
    EXPECT_EQ(parse_op("between"), Op::Between);
    EXPECT_EQ(parse_op("in"), Op::In);
    EXPECT_EQ(parse_op("not in"), Op::NotIn);
    EXPECT_EQ(parse_op("like"), Op::Like);
    EXPECT_EQ(parse_op("ilike"), Op::ILike);
    EXPECT_EQ(parse_op("~"), Op::Regex);
    EXPECT_EQ(parse_op("~*"), Op::RegexI);
    EXPECT_EQ(parse_op("is null"), Op::IsNull);
    EXPECT_EQ(parse_op("is not null"), Op::IsNotNull);
    EXPECT_EQ(parse_op("in list"), Op::InList);
    EXPECT_EQ(parse_op("domain in list"), Op::DomainInList);
}

TEST(ParseOp, CaseAndSpaceVariants) {
    EXPECT_EQ(parse_op("NOT   IN"), Op::NotIn);
    EXPECT_EQ(parse_op("Domain In List"), Op::DomainInList);
    EXPECT_EQ(parse_op("  domain\tin\n list  "), Op::DomainInList);
    EXPECT_EQ(parse_op("BETWEEN"), Op::Between);
    EXPECT_EQ(parse_op("ILike"), Op::ILike);
    EXPECT_EQ(parse_op("LIKE"), Op::Like);
    EXPECT_EQ(parse_op("Is Not Null"), Op::IsNotNull);
    EXPECT_EQ(parse_op("IS NULL"), Op::IsNull);
    EXPECT_EQ(parse_op(" In "), Op::In);
    EXPECT_EQ(parse_op("In  List"), Op::InList);
    EXPECT_EQ(parse_op(" != "), Op::Ne);
    EXPECT_EQ(parse_op(" >= "), Op::Ge);
}

TEST(ParseOp, UnknownOperators) {
    EXPECT_EQ(parse_op(""), std::nullopt);
    EXPECT_EQ(parse_op("   "), std::nullopt);
    EXPECT_EQ(parse_op("=="), std::nullopt);
    EXPECT_EQ(parse_op("=>"), std::nullopt);
    EXPECT_EQ(parse_op("< ="), std::nullopt);
    EXPECT_EQ(parse_op("notin"), std::nullopt);
    EXPECT_EQ(parse_op("isnull"), std::nullopt);
    EXPECT_EQ(parse_op("contains"), std::nullopt);
    EXPECT_EQ(parse_op("!~"), std::nullopt);
    EXPECT_EQ(parse_op("in lists"), std::nullopt);
}

TEST(OpProperties, NameRoundTripsAndClassification) {
    const Op all[] = {Op::Eq, Op::Ne, Op::Lt, Op::Le, Op::Gt, Op::Ge, Op::Between, Op::In, Op::NotIn,
                      Op::Like, Op::ILike, Op::Regex, Op::RegexI, Op::IsNull, Op::IsNotNull, Op::InList,
                      Op::DomainInList};
    for (Op op : all) EXPECT_EQ(parse_op(op_name(op)), op) << op_name(op);
    EXPECT_STREQ(op_name(Op::Ne), "<>");
    EXPECT_STREQ(op_name(Op::NotIn), "not in");

    EXPECT_EQ(op_arity(Op::IsNull), 0);
    EXPECT_EQ(op_arity(Op::IsNotNull), 0);
    EXPECT_EQ(op_arity(Op::Between), 2);
    EXPECT_EQ(op_arity(Op::In), -1);
    EXPECT_EQ(op_arity(Op::NotIn), -1);
    for (Op op : {Op::Eq, Op::Ne, Op::Lt, Op::Le, Op::Gt, Op::Ge, Op::Like, Op::ILike, Op::Regex, Op::RegexI,
                  Op::InList, Op::DomainInList})
        EXPECT_EQ(op_arity(op), 1) << op_name(op);

    for (Op op : all) {
        const bool pattern = op == Op::Like || op == Op::ILike || op == Op::Regex || op == Op::RegexI;
        EXPECT_EQ(op_is_pattern(op), pattern) << op_name(op);
        EXPECT_EQ(op_uses_list(op), op == Op::InList || op == Op::DomainInList) << op_name(op);
    }

    EXPECT_STREQ(op_sql_operator(Op::Eq), "=");
    EXPECT_STREQ(op_sql_operator(Op::In), "=");
    EXPECT_STREQ(op_sql_operator(Op::NotIn), "=");
    EXPECT_STREQ(op_sql_operator(Op::Ne), "<>");
    EXPECT_STREQ(op_sql_operator(Op::Lt), "<");
    EXPECT_STREQ(op_sql_operator(Op::Le), "<=");
    EXPECT_STREQ(op_sql_operator(Op::Gt), ">");
    EXPECT_STREQ(op_sql_operator(Op::Ge), ">=");
    EXPECT_STREQ(op_sql_operator(Op::Like), "~~");
    EXPECT_STREQ(op_sql_operator(Op::ILike), "~~*");
    EXPECT_STREQ(op_sql_operator(Op::Regex), "~");
    EXPECT_STREQ(op_sql_operator(Op::RegexI), "~*");
    EXPECT_EQ(op_sql_operator(Op::IsNull), nullptr);
    EXPECT_EQ(op_sql_operator(Op::Between), nullptr);
    EXPECT_EQ(op_sql_operator(Op::InList), nullptr);
}

TEST(OccurrenceCap, OnceAndMaxCount) {
    ActivityRuleSpec r;
    EXPECT_EQ(r.occurrence_cap(), std::nullopt);
    r.max_count = 3;
    EXPECT_EQ(r.occurrence_cap(), std::optional<std::int64_t>(3));
    r.once = true;
    EXPECT_EQ(r.occurrence_cap(), std::optional<std::int64_t>(1));
    r.max_count.reset();
    EXPECT_EQ(r.occurrence_cap(), std::optional<std::int64_t>(1));
    EXPECT_FALSE(r.time_dependent());
    r.expires_after = days(1);
    EXPECT_TRUE(r.time_dependent());
    r.expires_after.reset();
    r.half_life = days(1);
    EXPECT_TRUE(r.time_dependent());
}

// ---------------------------------------------------------------- validate_rule_fields

namespace {

using Values = std::vector<std::optional<std::string>>;

RawRuleFields activity(const std::string& op = "", Values values = {}) {
    RawRuleFields r;
    r.table = "activity_rule";
    r.rule_label = "rule \"demo request\" (id 7)";
    r.activity_type = "demo_request";
    r.points_text = "100";
    if (!op.empty()) {
        r.attribute = "channel";
        r.op = op;
        r.values = values;
    }
    return r;
}

RawRuleFields fit(const std::string& op, Values values) {
    RawRuleFields r;
    r.table = "fit_rule";
    r.rule_label = "rule \"ceo\" (id 3)";
    r.attribute = "job_title";
    r.op = op;
    r.values = std::move(values);
    r.points_text = "20";
    return r;
}

// Expects a UserError whose message names the table, the rule label and the column.
void expect_rejected(const RawRuleFields& raw, const std::string& column, const std::string& problem_part) {
    try {
        validate_rule_fields(raw);
        ADD_FAILURE() << "accepted; expected rejection on column " << column;
    } catch (const UserError& e) {
        const std::string msg = e.what();
        EXPECT_EQ(msg.rfind(raw.table + " " + raw.rule_label + ": ", 0), 0u) << msg;
        EXPECT_NE(msg.find("column \"" + column + "\""), std::string::npos) << msg;
        EXPECT_NE(msg.find(problem_part), std::string::npos) << msg;
        EXPECT_EQ(e.sqlstate(), sqlstate::kInvalidParameterValue);
    }
}

}  // namespace

TEST(ValidateRuleFields, AcceptsValidRules) {
    EXPECT_NO_THROW(validate_rule_fields(activity()));
    EXPECT_NO_THROW(validate_rule_fields(activity("=", {"web"})));
    EXPECT_NO_THROW(validate_rule_fields(activity("between", {"1", "5"})));
    EXPECT_NO_THROW(validate_rule_fields(activity("in", {"a"})));
    EXPECT_NO_THROW(validate_rule_fields(activity("not in", {"a", "b", "c"})));
    EXPECT_NO_THROW(validate_rule_fields(activity("is null", {})));
    EXPECT_NO_THROW(validate_rule_fields(fit("is not null", {})));
    EXPECT_NO_THROW(validate_rule_fields(fit("Domain In List", {"free_email_domains"})));
    EXPECT_NO_THROW(validate_rule_fields(fit("ilike", {"%ceo%"})));
    auto full = activity();
    full.points_text = "-2.5";
    full.max_points_text = "10";
    full.max_count = 5;
    full.expires_after = months(3);
    EXPECT_NO_THROW(validate_rule_fields(full));
    auto decay = activity();
    decay.half_life = Interval{0, 14, 0};
    EXPECT_NO_THROW(validate_rule_fields(decay));
    auto nullvalues = fit("is null", {});
    nullvalues.values.reset();
    EXPECT_NO_THROW(validate_rule_fields(nullvalues));
}

TEST(ValidateRuleFields, UnknownOperator) {
    expect_rejected(activity("==", {"x"}), "op", "has unknown operator \"==\"");
    expect_rejected(fit("contains", {"x"}), "op", "has unknown operator \"contains\"");
    try {
        validate_rule_fields(fit("contains", {"x"}));
    } catch (const UserError& e) {
        EXPECT_NE(e.hint().find("domain in list"), std::string::npos) << e.hint();
    }
}

TEST(ValidateRuleFields, WrongNumberOfValuesForEachArity) {
    // arity 0
    expect_rejected(fit("is null", {"x"}), "value", "must hold no values for operator \"is null\" (got 1)");
    expect_rejected(fit("is not null", {"x", "y"}), "value", "must hold no values");
    // arity 1
    expect_rejected(fit("=", {}), "value", "must hold exactly one value for operator \"=\" (got 0)");
    expect_rejected(fit("=", {"a", "b"}), "value", "must hold exactly one value for operator \"=\" (got 2)");
    expect_rejected(fit("like", {}), "value", "exactly one value");
    expect_rejected(fit("in list", {"l1", "l2"}), "value", "exactly one value for operator \"in list\"");
    auto missing = fit(">=", {});
    missing.values.reset();  // NULL value column
    expect_rejected(missing, "value", "exactly one value for operator \">=\" (got 0)");
    // arity 2
    expect_rejected(fit("between", {"1"}), "value", "must hold exactly two values for operator \"between\" (got 1)");
    expect_rejected(fit("between", {"1", "2", "3"}), "value", "exactly two values");
    expect_rejected(fit("between", {}), "value", "exactly two values");
    // at least one
    expect_rejected(fit("in", {}), "value", "must hold at least one value for operator \"in\" (got 0)");
    expect_rejected(fit("NOT IN", {}), "value", "at least one value for operator \"not in\"");
    auto in_null = activity("in", {});
    in_null.values.reset();
    expect_rejected(in_null, "value", "at least one value");
}

TEST(ValidateRuleFields, NullElements) {
    expect_rejected(fit("in", {"a", std::nullopt}), "value", "must not contain NULL elements");
    expect_rejected(fit("=", {std::nullopt}), "value", "must not contain NULL elements");
    expect_rejected(activity("between", {std::nullopt, "3"}), "value", "must not contain NULL elements");
}

TEST(ValidateRuleFields, BadPoints) {
    auto r = activity();
    r.points_text = "NaN";
    expect_rejected(r, "points", "value NaN must be a finite number");
    r.points_text = "Infinity";
    expect_rejected(r, "points", "value Infinity must be a finite number");
    r.points_text = "-infinity";
    expect_rejected(r, "points", "must be a finite number");
    r.points_text = "ten";
    expect_rejected(r, "points", "value ten is not a number");
    r.points_text = "0.1234567";
    expect_rejected(r, "points", "has more than 6 decimal places");
    r.points_text = "2e12";
    expect_rejected(r, "points", "is out of range");
    r.points_text.reset();
    expect_rejected(r, "points", "must not be null");
    auto f = fit("=", {"CEO"});
    f.points_text = "nan";
    expect_rejected(f, "points", "must be a finite number");
}

TEST(ValidateRuleFields, BadMaxPoints) {
    auto r = activity();
    r.max_points_text = "0";
    expect_rejected(r, "max_points", "must be greater than zero");
    r.max_points_text = "-5";
    expect_rejected(r, "max_points", "must be greater than zero");
    r.max_points_text = "NaN";
    expect_rejected(r, "max_points", "value NaN must be a finite number");
    r.max_points_text = "Infinity";
    expect_rejected(r, "max_points", "must be a finite number");
    r.max_points_text = "0.0000001";
    expect_rejected(r, "max_points", "has more than 6 decimal places");
}

TEST(ValidateRuleFields, BadMaxCount) {
    auto r = activity();
    r.max_count = 0;
    expect_rejected(r, "max_count", "must be greater than zero");
    r.max_count = -3;
    expect_rejected(r, "max_count", "must be greater than zero");
    r.max_count = 1;
    EXPECT_NO_THROW(validate_rule_fields(r));
}

TEST(ValidateRuleFields, BadIntervals) {
    const char* problem = "must be a positive interval (no negative part, not zero)";
    for (Interval iv : {Interval{}, Interval{0, -1, 0}, Interval{-1, 0, 0}, Interval{0, 0, -1},
                        Interval{1, -1, 0}, Interval{0, 2, -kHour}}) {
        auto r = activity();
        r.expires_after = iv;
        expect_rejected(r, "expires_after", problem);
        auto h = activity();
        h.half_life = iv;
        expect_rejected(h, "half_life", problem);
    }
}

TEST(ValidateRuleFields, BothExpiryAndHalfLife) {
    auto r = activity();
    r.expires_after = months(3);
    r.half_life = days(30);
    expect_rejected(r, "half_life", "cannot be set together with expires_after");
}

TEST(ValidateRuleFields, AttributeRules) {
    // A fit rule without an inline condition matches on its condition rows (or every lead).
    auto f = fit("=", {"x"});
    f.attribute.reset();
    f.op.reset();
    f.values.reset();
    EXPECT_NO_THROW(validate_rule_fields(f));
    // A condition row must name its attribute and operator; it has no points.
    auto c = fit("=", {"x"});
    c.table = "fit_condition";
    c.points_text.reset();
    EXPECT_NO_THROW(validate_rule_fields(c));
    c.attribute = "";
    expect_rejected(c, "attribute", "must name the column the condition tests");
    c.attribute = "account.revenue";
    c.op.reset();
    expect_rejected(c, "op", "must not be null");
    c.op = "between";
    expect_rejected(c, "value", "must hold exactly two values");
    f.attribute = "";
    f.op = "=";
    expect_rejected(f, "op", "is set but attribute is null");
    // op without attribute.
    auto a = activity();
    a.op = "=";
    expect_rejected(a, "op", "is set but attribute is null");
    a.attribute = "";
    expect_rejected(a, "op", "is set but attribute is null");
    // values without attribute.
    auto v = activity();
    v.values = Values{"x"};
    expect_rejected(v, "value", "is set but attribute is null");
    // An empty value array without attribute is harmless.
    auto e = activity();
    e.values = Values{};
    EXPECT_NO_THROW(validate_rule_fields(e));
    // attribute without op.
    auto n = activity();
    n.attribute = "channel";
    expect_rejected(n, "op", "must be set when attribute is set");
}

TEST(ValidateRuleFields, ActivityTypeRequired) {
    auto r = activity();
    r.activity_type.reset();
    expect_rejected(r, "activity_type", "must not be empty");
    r.activity_type = "";
    expect_rejected(r, "activity_type", "must not be empty");
}

TEST(ValidateRuleFields, ExactMessage) {
    auto r = activity();
    r.max_count = 0;
    try {
        validate_rule_fields(r);
        FAIL();
    } catch (const UserError& e) {
        EXPECT_STREQ(e.what(), "activity_rule rule \"demo request\" (id 7): column \"max_count\" must be greater than zero");
    }
}

// ---------------------------------------------------------------- validate_stage

TEST(ValidateStage, AcceptsValid) {
    EXPECT_NO_THROW(validate_stage("m", "SQL", std::string("65"), std::string("20"), std::string("-5.5")));
    EXPECT_NO_THROW(validate_stage("m", "cold", std::nullopt, std::nullopt, std::nullopt));
}

TEST(ValidateStage, RejectsReservedName) {
    try {
        validate_stage("seed", "disqualified", std::string("10"), std::nullopt, std::nullopt);
        FAIL();
    } catch (const UserError& e) {
        EXPECT_STREQ(e.what(),
                     "stage \"disqualified\" of model \"seed\": column \"name\" uses the reserved stage name "
                     "\"disqualified\"");
        EXPECT_EQ(e.sqlstate(), sqlstate::kInvalidParameterValue);
    }
    EXPECT_THROW(validate_stage("seed", "", std::nullopt, std::nullopt, std::nullopt), UserError);
}

TEST(ValidateStage, RejectsBadNumbers) {
    struct Case {
        std::optional<std::string> s, f, e;
        const char* column;
        const char* problem;
    };
    const Case cases[] = {
        {std::string("abc"), std::nullopt, std::nullopt, "min_score", "value abc is not a number"},
        {std::nullopt, std::string("NaN"), std::nullopt, "min_fit", "value NaN must be a finite number"},
        {std::nullopt, std::nullopt, std::string("1.0000001"), "min_engagement", "has more than 6 decimal places"},
        {std::string("1e13"), std::nullopt, std::nullopt, "min_score", "is out of range"},
        {std::string(""), std::nullopt, std::nullopt, "min_score", "is empty"},
    };
    for (const auto& c : cases) {
        try {
            validate_stage("seed", "MQL", c.s, c.f, c.e);
            ADD_FAILURE() << c.column;
        } catch (const UserError& e) {
            const std::string msg = e.what();
            EXPECT_EQ(msg.rfind("stage \"MQL\" of model \"seed\": column \"" + std::string(c.column) + "\"", 0), 0u)
                << msg;
            EXPECT_NE(msg.find(c.problem), std::string::npos) << msg;
        }
    }
}

TEST(ParseRulePoints, ValueAndError) {
    EXPECT_EQ(parse_rule_points("rule x", "points", "12.5"), 12500000);
    try {
        parse_rule_points("rule \"open\" (id 2)", "points", "oops");
        FAIL();
    } catch (const UserError& e) {
        EXPECT_STREQ(e.what(), "rule \"open\" (id 2): column \"points\" value oops is not a number");
        EXPECT_EQ(e.sqlstate(), sqlstate::kInvalidParameterValue);
    }
}

// ---------------------------------------------------------------- email_domain

TEST(EmailDomain, Cases) {
    EXPECT_EQ(email_domain("A@Hotmail.COM"), "hotmail.com");
    EXPECT_EQ(email_domain("jane.doe@example.org"), "example.org");
    EXPECT_EQ(email_domain("no-at-sign"), "");
    EXPECT_EQ(email_domain(""), "");
    EXPECT_EQ(email_domain("\"a@b\"@Outlook.Com"), "outlook.com");  // last @ wins
    EXPECT_EQ(email_domain("x@y@ICLOUD.com"), "icloud.com");
    EXPECT_EQ(email_domain("user@"), "");
    EXPECT_EQ(email_domain("@gmail.com"), "gmail.com");
    EXPECT_EQ(email_domain("bob@Example.COM  "), "example.com");  // trailing blanks dropped
}

TEST(EmailDomain, InSortedList) {
    const std::vector<std::string> domains = {"", "gmail.com", "hotmail.com"};
    EXPECT_TRUE(email_domain_in("Jane@GMAIL.com ", domains));
    EXPECT_TRUE(email_domain_in("x@y@hotmail.com", domains));
    EXPECT_FALSE(email_domain_in("jane@example.org", domains));
    // Without an '@' there is no domain, not even the empty one.
    EXPECT_FALSE(email_domain_in("gmail.com", domains));
    EXPECT_TRUE(email_domain_in("user@", domains));
    EXPECT_FALSE(email_domain_in("user@", {"gmail.com"}));
}

TEST(ValidateRuleFields, MultiplyBy) {
    auto a = activity();
    a.multiply_by = "amount";
    EXPECT_NO_THROW(validate_rule_fields(a));
    a.multiply_by = "";
    expect_rejected(a, "multiply_by", "must name a numeric column");
    a.multiply_by = "amount";
    a.min_count = 2;
    expect_rejected(a, "multiply_by", "cannot be combined with min_count");
    a.min_count.reset();
    a.cooldown = days(1);
    expect_rejected(a, "multiply_by", "cannot be combined with cooldown");
}

TEST(Conditions, GroupsAreAndWithinOrAcross) {
    auto row = [](std::int64_t id, std::int32_t grp) {
        ConditionRowSpec c;
        c.id = id;
        c.grp = grp;
        return c;
    };
    std::vector<ConditionRowSpec> none;
    EXPECT_TRUE(groups_hold(none, [](std::size_t) { return false; }));
    std::vector<ConditionRowSpec> conds = {row(5, 2), row(1, 1), row(3, 1), row(4, 2), row(9, 7)};
    order_conditions(conds);
    ASSERT_EQ(conds[0].id, 1);
    ASSERT_EQ(conds[1].id, 3);
    ASSERT_EQ(conds[2].id, 4);
    ASSERT_EQ(conds[3].id, 5);
    ASSERT_EQ(conds[4].id, 9);
    auto with = [&](std::set<std::int64_t> true_ids) {
        return groups_hold(conds, [&](std::size_t i) { return true_ids.count(conds[i].id) > 0; });
    };
    EXPECT_FALSE(with({}));
    EXPECT_FALSE(with({1, 4}));        // half of group 1, half of group 2
    EXPECT_TRUE(with({1, 3}));         // all of group 1
    EXPECT_TRUE(with({4, 5}));         // all of group 2
    EXPECT_TRUE(with({9}));            // a group of one
    EXPECT_FALSE(with({1, 5}));
    // Every possible truth assignment: the result is OR over groups of AND within each.
    for (int mask = 0; mask < 32; mask++) {
        std::set<std::int64_t> t;
        for (int b = 0; b < 5; b++)
            if (mask & (1 << b)) t.insert(conds[static_cast<std::size_t>(b)].id);
        const bool expected = (t.count(1) && t.count(3)) || (t.count(4) && t.count(5)) || t.count(9);
        EXPECT_EQ(with(t), expected) << mask;
    }
}

TEST(MultiplyPoints, RoundsHalfAwayFromZero) {
    EXPECT_EQ(multiply_points(1000000, 250000000), 250000000);      // 1 x 250
    EXPECT_EQ(multiply_points(10000, 1234000000), 12340000);       // 0.01 x 1234 = 12.34
    EXPECT_EQ(multiply_points(1500000, 333333), 500000);           // 1.5 x 0.333333 = 0.4999995 -> 0.5
    EXPECT_EQ(multiply_points(-1500000, 333333), -500000);
    EXPECT_EQ(multiply_points(1, 1), 0);                           // 1e-12 rounds to 0
    EXPECT_EQ(multiply_points(1, 500000), 1);                      // 0.0000005 -> 0.000001
    EXPECT_EQ(multiply_points(-1, 500000), -1);
    EXPECT_THROW(multiply_points(kMaxPointsMagnitude, kMaxPointsMagnitude), UserError);
}
