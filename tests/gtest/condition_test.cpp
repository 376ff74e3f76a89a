#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "core/rules.hpp"

using namespace leadscore;

namespace {

// A test value: NULL, a number or a text.
using V = std::optional<std::variant<double, std::string>>;

V num(double d) { return V(std::in_place, d); }
V txt(const std::string& s) { return V(std::in_place, s); }
const V kNull = std::nullopt;

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

// SQL LIKE without escapes: % any run, _ any one character.
bool like_match(const std::string& s, size_t si, const std::string& p, size_t pi) {
    if (pi == p.size()) return si == s.size();
    if (p[pi] == '%') {
        for (size_t k = si; k <= s.size(); k++)
            if (like_match(s, k, p, pi + 1)) return true;
        return false;
    }
    if (si == s.size()) return false;
    if (p[pi] == '_' || p[pi] == s[si]) return like_match(s, si + 1, p, pi + 1);
    return false;
}

// A small "type": numbers compare numerically, texts lexicographically. Counts calls so
// that the tests can check what evaluate_condition delegates.
struct TestOps {
    std::set<std::string> list{"acme", "globex"};
    std::set<std::string> domains{"hotmail.com", "outlook.com"};
    int binary_calls = 0;
    int list_calls = 0;
    int domain_calls = 0;

    bool is_null(const V& v) const { return !v.has_value(); }

    bool binary(Op op, const V& lhs, const V& rhs) {
        binary_calls++;
        EXPECT_TRUE(lhs.has_value());
        EXPECT_TRUE(rhs.has_value());
        if (std::holds_alternative<double>(*lhs)) {
            const double a = std::get<double>(*lhs), b = std::get<double>(*rhs);
            switch (op) {
                case Op::Eq: return a == b;
                case Op::Ne: return a != b;
                case Op::Lt: return a < b;
                case Op::Le: return a <= b;
                case Op::Gt: return a > b;
                case Op::Ge: return a >= b;
                default: ADD_FAILURE() << "pattern operator on a number"; return false;
            }
        }
        const std::string& a = std::get<std::string>(*lhs);
        const std::string& b = std::get<std::string>(*rhs);
        switch (op) {
            case Op::Eq: return a == b;
            case Op::Ne: return a != b;
            case Op::Lt: return a < b;
            case Op::Le: return a <= b;
            case Op::Gt: return a > b;
            case Op::Ge: return a >= b;
            case Op::Like: return like_match(a, 0, b, 0);
            case Op::ILike: return like_match(lower(a), 0, lower(b), 0);
            case Op::Regex: return std::regex_search(a, std::regex(b));
            case Op::RegexI: return std::regex_search(a, std::regex(b, std::regex::icase));
            default: ADD_FAILURE() << "unexpected op " << op_name(op); return false;
        }
    }
    bool in_list(const V& v) {
        list_calls++;
        return list.count(std::get<std::string>(*v)) > 0;
    }
    bool domain_in_list(const V& v) {
        domain_calls++;
        return domains.count(email_domain(std::get<std::string>(*v))) > 0;
    }
};

bool eval(Op op, const V& value, std::vector<V> operands, TestOps* ops_out = nullptr) {
    TestOps local;
    TestOps& ops = ops_out ? *ops_out : local;
    return evaluate_condition<V, TestOps>(op, value, operands, ops);
}

const Op kAllOps[] = {Op::Eq, Op::Ne, Op::Lt, Op::Le, Op::Gt, Op::Ge, Op::Between, Op::In, Op::NotIn,
                      Op::Like, Op::ILike, Op::Regex, Op::RegexI, Op::IsNull, Op::IsNotNull, Op::InList,
                      Op::DomainInList};

// Operands that would make the operator true for some non-null value.
std::vector<V> operands_for(Op op) {
    switch (op) {
        case Op::IsNull: case Op::IsNotNull: return {};
        case Op::Between: return {txt("a"), txt("z")};
        case Op::In: case Op::NotIn: return {txt("a"), txt("b")};
        case Op::InList: case Op::DomainInList: return {txt("free_email_domains")};
        case Op::Like: case Op::ILike: return {txt("%")};
        case Op::Regex: case Op::RegexI: return {txt(".*")};
        default: return {txt("m")};
    }
}

}  // namespace

TEST(Condition, NullAttributeMatchesOnlyIsNull) {
    for (Op op : kAllOps) {
        TestOps ops;
        const bool r = eval(op, kNull, operands_for(op), &ops);
        EXPECT_EQ(r, op == Op::IsNull) << op_name(op);
        // Nothing is delegated for a NULL value.
        EXPECT_EQ(ops.binary_calls + ops.list_calls + ops.domain_calls, 0) << op_name(op);
    }
    // Even "not in" and "<>", which would be true for any other value, are false for NULL.
    EXPECT_FALSE(eval(Op::NotIn, kNull, {txt("x")}));
    EXPECT_FALSE(eval(Op::Ne, kNull, {num(1)}));
}

TEST(Condition, IsNullIsNotNull) {
    EXPECT_TRUE(eval(Op::IsNull, kNull, {}));
    EXPECT_FALSE(eval(Op::IsNull, num(0), {}));
    EXPECT_FALSE(eval(Op::IsNull, txt(""), {}));
    EXPECT_FALSE(eval(Op::IsNotNull, kNull, {}));
    EXPECT_TRUE(eval(Op::IsNotNull, num(0), {}));
    EXPECT_TRUE(eval(Op::IsNotNull, txt(""), {}));
}

TEST(Condition, Comparisons) {
    EXPECT_TRUE(eval(Op::Eq, num(5), {num(5)}));
    EXPECT_FALSE(eval(Op::Eq, num(5), {num(6)}));
    EXPECT_TRUE(eval(Op::Ne, num(5), {num(6)}));
    EXPECT_FALSE(eval(Op::Ne, num(5), {num(5)}));
    EXPECT_TRUE(eval(Op::Lt, num(4), {num(5)}));
    EXPECT_FALSE(eval(Op::Lt, num(5), {num(5)}));
    EXPECT_TRUE(eval(Op::Le, num(5), {num(5)}));
    EXPECT_FALSE(eval(Op::Le, num(6), {num(5)}));
    EXPECT_TRUE(eval(Op::Gt, num(6), {num(5)}));
    EXPECT_FALSE(eval(Op::Gt, num(5), {num(5)}));
    EXPECT_TRUE(eval(Op::Ge, num(5), {num(5)}));
    EXPECT_FALSE(eval(Op::Ge, num(4), {num(5)}));
    EXPECT_TRUE(eval(Op::Eq, txt("CEO"), {txt("CEO")}));
    EXPECT_FALSE(eval(Op::Eq, txt("CEO"), {txt("ceo")}));
    EXPECT_TRUE(eval(Op::Lt, txt("apple"), {txt("banana")}));
    EXPECT_TRUE(eval(Op::Ne, txt("CTO"), {txt("CEO")}));
}

TEST(Condition, BetweenIsInclusive) {
    const std::vector<V> range{num(10), num(20)};
    EXPECT_TRUE(eval(Op::Between, num(10), range));
    EXPECT_TRUE(eval(Op::Between, num(15), range));
    EXPECT_TRUE(eval(Op::Between, num(20), range));
    EXPECT_FALSE(eval(Op::Between, num(9.999), range));
    EXPECT_FALSE(eval(Op::Between, num(20.001), range));
    // Reversed bounds match nothing (SQL BETWEEN is not symmetric).
    EXPECT_FALSE(eval(Op::Between, num(15), {num(20), num(10)}));
    // Degenerate range.
    EXPECT_TRUE(eval(Op::Between, num(7), {num(7), num(7)}));
    EXPECT_TRUE(eval(Op::Between, txt("m"), {txt("a"), txt("z")}));
    EXPECT_FALSE(eval(Op::Between, txt("zz"), {txt("a"), txt("z")}));
}

TEST(Condition, InAndNotIn) {
    const std::vector<V> set{txt("DE"), txt("AT"), txt("CH")};
    EXPECT_TRUE(eval(Op::In, txt("DE"), set));
    EXPECT_TRUE(eval(Op::In, txt("CH"), set));
    EXPECT_FALSE(eval(Op::In, txt("FR"), set));
    EXPECT_FALSE(eval(Op::NotIn, txt("AT"), set));
    EXPECT_TRUE(eval(Op::NotIn, txt("FR"), set));
    EXPECT_TRUE(eval(Op::In, num(3), {num(3)}));
    EXPECT_FALSE(eval(Op::In, num(3), {num(4)}));
    EXPECT_TRUE(eval(Op::NotIn, num(3), {num(4)}));
    // Stops at the first match.
    TestOps ops;
    EXPECT_TRUE(eval(Op::In, txt("DE"), set, &ops));
    EXPECT_EQ(ops.binary_calls, 1);
    TestOps ops2;
    EXPECT_TRUE(eval(Op::NotIn, txt("FR"), set, &ops2));
    EXPECT_EQ(ops2.binary_calls, 3);
}

TEST(Condition, PatternsDelegateToBinary) {
    EXPECT_TRUE(eval(Op::Like, txt("Chief Executive"), {txt("Chief%")}));
    EXPECT_FALSE(eval(Op::Like, txt("chief executive"), {txt("Chief%")}));
    EXPECT_TRUE(eval(Op::ILike, txt("chief executive"), {txt("CHIEF%")}));
    EXPECT_FALSE(eval(Op::ILike, txt("vice chief"), {txt("chief%")}));
    EXPECT_TRUE(eval(Op::Like, txt("cat"), {txt("c_t")}));
    EXPECT_TRUE(eval(Op::Regex, txt("student@uni.edu"), {txt("\\.edu$")}));
    EXPECT_FALSE(eval(Op::Regex, txt("student@UNI.EDU"), {txt("\\.edu$")}));
    EXPECT_TRUE(eval(Op::RegexI, txt("student@UNI.EDU"), {txt("\\.edu$")}));
    EXPECT_FALSE(eval(Op::RegexI, txt("ceo@acme.com"), {txt("\\.edu$")}));
}

TEST(Condition, InListDelegates) {
    TestOps ops;
    EXPECT_TRUE(eval(Op::InList, txt("acme"), {txt("competitors")}, &ops));
    EXPECT_FALSE(eval(Op::InList, txt("initech"), {txt("competitors")}, &ops));
    EXPECT_EQ(ops.list_calls, 2);
    EXPECT_EQ(ops.binary_calls, 0);
    EXPECT_EQ(ops.domain_calls, 0);
}

TEST(Condition, DomainInListDelegates) {
    TestOps ops;
    EXPECT_TRUE(eval(Op::DomainInList, txt("Jane@HOTMAIL.com"), {txt("free_email_domains")}, &ops));
    EXPECT_TRUE(eval(Op::DomainInList, txt("x@y@outlook.com"), {txt("free_email_domains")}, &ops));
    EXPECT_FALSE(eval(Op::DomainInList, txt("ceo@acme.com"), {txt("free_email_domains")}, &ops));
    EXPECT_FALSE(eval(Op::DomainInList, txt("hotmail.com"), {txt("free_email_domains")}, &ops));  // no @
    EXPECT_EQ(ops.domain_calls, 4);
    EXPECT_EQ(ops.list_calls, 0);
    EXPECT_EQ(ops.binary_calls, 0);
}
