#include <gtest/gtest.h>

#include <climits>
#include <string>

#include "core/decimal.hpp"
#include "test_util.hpp"

using namespace leadscore;
using leadscore_test::P;

namespace {

// Parses text that must be accepted.
MicroPoints ok(const std::string& text) {
    std::string reason = "<untouched>";
    auto v = parse_points(text, &reason);
    EXPECT_TRUE(v.has_value()) << "\"" << text << "\" rejected: " << reason;
    return v.value_or(-424242);
}

// Parses text that must be rejected; returns the reason.
std::string bad(const std::string& text) {
    std::string reason;
    auto v = parse_points(text, &reason);
    EXPECT_FALSE(v.has_value()) << "\"" << text << "\" accepted as " << v.value_or(0);
    EXPECT_FALSE(reason.empty()) << "no reason for \"" << text << "\"";
    return reason;
}

}  // namespace

TEST(ParsePoints, Integers) {
    EXPECT_EQ(ok("0"), 0);
    EXPECT_EQ(ok("1"), 1000000);
    EXPECT_EQ(ok("10"), P(10));
    EXPECT_EQ(ok("100"), P(100));
    EXPECT_EQ(ok("+25"), P(25));
    EXPECT_EQ(ok("007"), P(7));
    EXPECT_EQ(ok("  42  "), P(42));  // surrounding whitespace is ignored
    EXPECT_EQ(ok("\t5\n"), P(5));
}

TEST(ParsePoints, Decimals) {
    EXPECT_EQ(ok("2.5"), 2500000);
    EXPECT_EQ(ok("0.5"), 500000);
    EXPECT_EQ(ok(".5"), 500000);
    EXPECT_EQ(ok("3."), P(3));
    EXPECT_EQ(ok("0.000001"), 1);
    EXPECT_EQ(ok("123.456789"), 123456789);
    EXPECT_EQ(ok("0.1"), 100000);
}

TEST(ParsePoints, Negatives) {
    EXPECT_EQ(ok("-1"), -P(1));
    EXPECT_EQ(ok("-12.5"), -12500000);
    EXPECT_EQ(ok("-1000"), -P(1000));
    EXPECT_EQ(ok("-0.000001"), -1);
    EXPECT_EQ(ok("-0"), 0);
    EXPECT_EQ(ok("-0.0"), 0);
}

TEST(ParsePoints, Exponents) {
    EXPECT_EQ(ok("1e3"), P(1000));
    EXPECT_EQ(ok("1E3"), P(1000));
    EXPECT_EQ(ok("1e+3"), P(1000));
    EXPECT_EQ(ok("2.5e2"), P(250));
    EXPECT_EQ(ok("25e-1"), 2500000);
    EXPECT_EQ(ok("1e-6"), 1);
    EXPECT_EQ(ok("-1.5e1"), -P(15));
    EXPECT_EQ(ok("100e-8"), 1);        // 0.000001 exactly
    EXPECT_EQ(ok("1.e3"), P(1000));
    EXPECT_EQ(ok("0e5"), 0);
    EXPECT_EQ(ok("1e12"), P(1000000000000LL));
}

TEST(ParsePoints, MoreThanSixDecimalPlacesRejected) {
    EXPECT_EQ(bad("0.0000001"), "has more than 6 decimal places");
    EXPECT_EQ(bad("1.1234567"), "has more than 6 decimal places");
    EXPECT_EQ(bad("-2.0000005"), "has more than 6 decimal places");
    EXPECT_EQ(bad("1e-7"), "has more than 6 decimal places");
    EXPECT_EQ(bad("123e-9"), "has more than 6 decimal places");
}

TEST(ParsePoints, TrailingZerosBeyondSixPlacesAccepted) {
    EXPECT_EQ(ok("1.50000000"), 1500000);
    EXPECT_EQ(ok("2.000000000000"), P(2));
    EXPECT_EQ(ok("0.0000010"), 1);
    EXPECT_EQ(ok("0.00000000"), 0);
    EXPECT_EQ(ok("1000000000000.0000000"), P(1000000000000LL));
    EXPECT_EQ(ok("5000e-9"), 5);
}

TEST(ParsePoints, NanAndInfinityRejected) {
    const std::string why = "must be a finite number (NaN and infinity are not allowed)";
    EXPECT_EQ(bad("NaN"), why);
    EXPECT_EQ(bad("nan"), why);
    EXPECT_EQ(bad(" NAN "), why);
    EXPECT_EQ(bad("Infinity"), why);
    EXPECT_EQ(bad("-Infinity"), why);
    EXPECT_EQ(bad("+infinity"), why);
    EXPECT_EQ(bad("inf"), why);
    EXPECT_EQ(bad("-INF"), why);
}

TEST(ParsePoints, OutOfRangeRejected) {
    // 1e12 points is the largest magnitude.
    EXPECT_EQ(ok("1000000000000"), kMaxPointsMagnitude);
    EXPECT_EQ(ok("-1000000000000"), -kMaxPointsMagnitude);
    EXPECT_EQ(bad("1000000000000.000001"), "is out of range (at most 1e12 in magnitude)");
    EXPECT_EQ(bad("1000000000001"), "is out of range (at most 1e12 in magnitude)");
    EXPECT_EQ(bad("-1000000000001"), "is out of range (at most 1e12 in magnitude)");
    EXPECT_EQ(bad("1e13"), "is out of range (at most 1e12 in magnitude)");
    EXPECT_EQ(bad("99999999999999999999999"), "is out of range (at most 1e12 in magnitude)");
    EXPECT_EQ(bad("1e101"), "is out of range");
}

TEST(ParsePoints, GarbageRejectedWithReason) {
    EXPECT_EQ(bad(""), "is empty");
    EXPECT_EQ(bad("   "), "is empty");
    EXPECT_EQ(bad("abc"), "is not a number");
    EXPECT_EQ(bad("-"), "is not a number");
    EXPECT_EQ(bad("+"), "is not a number");
    EXPECT_EQ(bad("."), "is not a number");
    EXPECT_EQ(bad("1.2.3"), "is not a number");
    EXPECT_EQ(bad("--1"), "is not a number");
    EXPECT_EQ(bad("+-1"), "is not a number");
    EXPECT_EQ(bad("1 2"), "is not a number");
    EXPECT_EQ(bad("12abc"), "is not a number");
    EXPECT_EQ(bad("0x10"), "is not a number");
    EXPECT_EQ(bad("1,5"), "is not a number");
    EXPECT_EQ(bad("e5"), "is not a number");
    EXPECT_EQ(bad("1e"), "is not a number");
    EXPECT_EQ(bad("1e+"), "is not a number");
    EXPECT_EQ(bad("1e5x"), "is not a number");
    EXPECT_EQ(bad("1e2.5"), "is not a number");
}

TEST(ParsePoints, NullReasonPointerIsAllowed) {
    EXPECT_FALSE(parse_points("garbage", nullptr).has_value());
    EXPECT_EQ(parse_points("7", nullptr), std::optional<MicroPoints>(P(7)));
}

TEST(FormatPoints, Values) {
    EXPECT_EQ(format_points(0), "0");
    EXPECT_EQ(format_points(P(145)), "145");
    EXPECT_EQ(format_points(-2500000), "-2.5");
    EXPECT_EQ(format_points(1), "0.000001");
    EXPECT_EQ(format_points(-1), "-0.000001");
    EXPECT_EQ(format_points(1230000), "1.23");
    EXPECT_EQ(format_points(100000), "0.1");
    EXPECT_EQ(format_points(P(-1000)), "-1000");
    EXPECT_EQ(format_points(kMaxPointsMagnitude), "1000000000000");
    EXPECT_EQ(format_points(INT64_MAX), "9223372036854.775807");
    EXPECT_EQ(format_points(INT64_MIN), "-9223372036854.775808");
}

TEST(FormatPoints, RoundTrips) {
    const char* texts[] = {"0", "1", "-1", "2.5", "-2.5", "0.000001", "-0.000001", "145",
                           "123.456789", "1000000000000", "-1000000000000", "999999.999999", "0.1"};
    for (const char* t : texts) EXPECT_EQ(format_points(ok(t)), t);
    const MicroPoints values[] = {0, 1, -1, 10, 999999, 1000001, -1234567890123LL, kMaxPointsMagnitude,
                                  -kMaxPointsMagnitude, 42000000};
    for (MicroPoints v : values) EXPECT_EQ(ok(format_points(v)), v) << v;
    // Non-canonical spellings come back canonical.
    EXPECT_EQ(format_points(ok("2.50000000")), "2.5");
    EXPECT_EQ(format_points(ok("1e3")), "1000");
    EXPECT_EQ(format_points(ok("+007.10")), "7.1");
}

TEST(NarrowPoints, InRangeAndOutOfRange) {
    EXPECT_EQ(narrow_points(static_cast<WideSum>(P(5)), "x"), P(5));
    EXPECT_EQ(narrow_points(static_cast<WideSum>(INT64_MAX), "x"), INT64_MAX);
    EXPECT_EQ(narrow_points(-static_cast<WideSum>(INT64_MAX), "x"), -INT64_MAX);
    try {
        narrow_points(static_cast<WideSum>(INT64_MAX) + 1, "engagement score");
        FAIL() << "expected UserError";
    } catch (const UserError& e) {
        EXPECT_STREQ(e.what(), "engagement score is out of range");
        EXPECT_EQ(e.sqlstate(), sqlstate::kNumericValueOutOfRange);
    }
    EXPECT_THROW(narrow_points(-static_cast<WideSum>(INT64_MAX) - 1, "x"), UserError);
}

// The allocation-free path for plain decimals gives what the general parser gives: the
// same text with a leading '+' (which only the general parser takes) must parse alike.
TEST(ParsePoints, PlainFormAgreesWithTheGeneralParser) {
    std::uint64_t x = 88172645463325252ULL;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        const int digits = static_cast<int>(x % 19);
        std::int64_t v = static_cast<std::int64_t>(x >> 8);
        std::int64_t limit = 1;
        for (int k = 0; k < digits; k++) limit *= 10;
        v %= limit;
        if (x & 1) v = -v;
        const std::string text = format_points(v);
        const auto plain = parse_points(text, nullptr, INT64_MAX);
        ASSERT_TRUE(plain.has_value()) << text;
        EXPECT_EQ(*plain, v) << text;
        const std::string signed_text = v < 0 ? text : "+" + text;
        EXPECT_EQ(parse_points(signed_text, nullptr, INT64_MAX), plain) << signed_text;
        // Rule values are limited to 1e12 points either way.
        EXPECT_EQ(parse_points(text, nullptr).has_value(), parse_points(signed_text, nullptr).has_value()) << text;
    }
    EXPECT_EQ(parse_points("0012.500", nullptr), 12500000);
    EXPECT_EQ(parse_points("-0", nullptr), 0);
    EXPECT_EQ(parse_points("5.", nullptr), P(5));
    EXPECT_FALSE(parse_points("1.0000001", nullptr).has_value());
    EXPECT_FALSE(parse_points("1000000000001", nullptr).has_value());
    EXPECT_EQ(parse_points("1000000000001", nullptr, INT64_MAX), P(1000000000001LL));
    EXPECT_FALSE(parse_points("-", nullptr).has_value());
}

TEST(ScaledPoints, ShortestDigitsAndScale) {
    auto check = [](MicroPoints v, std::int64_t digits, int scale) {
        const ScaledPoints s = scaled_points(v);
        EXPECT_EQ(s.digits, digits) << v;
        EXPECT_EQ(s.scale, scale) << v;
    };
    check(0, 0, 0);
    check(145000000, 145, 0);
    check(-2500000, -25, 1);
    check(1, 1, 6);
    check(107219178, 107219178, 6);
    check(10000000, 10, 0);
    check(INT64_MIN, INT64_MIN, 6);
    check(-INT64_MAX, -INT64_MAX, 6);
}

// Long digit strings leave the plain path before they can overflow it.
TEST(ParsePoints, VeryLongDigitStringsDoNotOverflow) {
    EXPECT_FALSE(parse_points("99999999999999999999999", nullptr).has_value());
    EXPECT_FALSE(parse_points("4444444444454444444", nullptr, INT64_MAX).has_value());
    EXPECT_EQ(parse_points("0000000000000000012.5", nullptr), 12500000);
}
