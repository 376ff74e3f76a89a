#include <gtest/gtest.h>

#include "core/timecalc.hpp"
#include "test_util.hpp"

using namespace leadscore;
using namespace leadscore_test;

// The test helper itself, checked against values computed with Python's datetime.
TEST(TimeHelper, MatchesKnownValues) {
    EXPECT_EQ(ts(2000, 1, 1), 0);
    EXPECT_EQ(ts(2024, 1, 31, 10, 30), 760012200000000LL);
    EXPECT_EQ(ts(1999, 12, 31, 12), -43200000000LL);
    EXPECT_EQ(ts(1970, 1, 1), -946684800000000LL);
    EXPECT_EQ(ts(1600, 2, 29), -12617683200000000LL);
}

TEST(AddInterval, MonthFromJan31ClampsToEndOfFebruary) {
    // Leap year: Feb 29; time of day preserved.
    EXPECT_EQ(add_interval(ts(2024, 1, 31, 10, 30, 15, 123456), months(1)), ts(2024, 2, 29, 10, 30, 15, 123456));
    // Common year: Feb 28.
    EXPECT_EQ(add_interval(ts(2023, 1, 31, 23, 59, 59, 999999), months(1)), ts(2023, 2, 28, 23, 59, 59, 999999));
    // Century rules: 2000 is a leap year, 2100 is not.
    EXPECT_EQ(add_interval(ts(2000, 1, 31), months(1)), ts(2000, 2, 29));
    EXPECT_EQ(add_interval(ts(2100, 1, 31), months(1)), ts(2100, 2, 28));
    // Other short months.
    EXPECT_EQ(add_interval(ts(2023, 3, 31, 8), months(1)), ts(2023, 4, 30, 8));
    EXPECT_EQ(add_interval(ts(2023, 8, 31), months(1)), ts(2023, 9, 30));
}

TEST(AddInterval, MonthsOrdinaryAndAcrossYears) {
    EXPECT_EQ(add_interval(ts(2024, 1, 15, 12), months(3)), ts(2024, 4, 15, 12));
    EXPECT_EQ(add_interval(ts(2023, 11, 30, 10), months(3)), ts(2024, 2, 29, 10));
    EXPECT_EQ(add_interval(ts(2023, 12, 15), months(1)), ts(2024, 1, 15));
    EXPECT_EQ(add_interval(ts(2023, 5, 10), months(12)), ts(2024, 5, 10));
    EXPECT_EQ(add_interval(ts(2024, 2, 29), months(12)), ts(2025, 2, 28));
    EXPECT_EQ(add_interval(ts(2023, 5, 10), months(25)), ts(2025, 6, 10));
    // Negative months.
    EXPECT_EQ(add_interval(ts(2024, 3, 31, 6), months(-1)), ts(2024, 2, 29, 6));
    EXPECT_EQ(add_interval(ts(2024, 1, 15), months(-1)), ts(2023, 12, 15));
    EXPECT_EQ(add_interval(ts(2024, 1, 15), months(-13)), ts(2022, 12, 15));
}

TEST(AddInterval, Days) {
    EXPECT_EQ(add_interval(ts(2024, 2, 28, 13), days(1)), ts(2024, 2, 29, 13));
    EXPECT_EQ(add_interval(ts(2023, 2, 28, 13), days(1)), ts(2023, 3, 1, 13));
    EXPECT_EQ(add_interval(ts(2023, 12, 31), days(1)), ts(2024, 1, 1));
    EXPECT_EQ(add_interval(ts(2024, 1, 1), days(-1)), ts(2023, 12, 31));
    EXPECT_EQ(add_interval(ts(2024, 1, 1), days(366)), ts(2025, 1, 1));
    EXPECT_EQ(add_interval(0, days(0)), 0);
}

TEST(AddInterval, Micros) {
    EXPECT_EQ(add_interval(ts(2024, 1, 1), micros(1)), ts(2024, 1, 1) + 1);
    EXPECT_EQ(add_interval(ts(2024, 1, 1), micros(-1)), ts(2023, 12, 31, 23, 59, 59, 999999));
    EXPECT_EQ(add_interval(ts(2024, 1, 1), micros(kHour * 36)), ts(2024, 1, 2, 12));
}

TEST(AddInterval, MonthsThenDaysThenMicros) {
    // Like PostgreSQL: months first (Jan 31 -> Feb 29), then days, then time.
    Interval iv{1, 1, kHour};
    EXPECT_EQ(add_interval(ts(2024, 1, 31, 10), iv), ts(2024, 3, 1, 11));
    Interval iv2{1, 0, 0};
    EXPECT_EQ(add_interval(add_interval(ts(2024, 1, 30), days(1)), iv2), ts(2024, 2, 29));
}

TEST(AddInterval, NegativeTimestampsBefore2000) {
    EXPECT_EQ(add_interval(ts(1999, 12, 31, 12), months(1)), ts(2000, 1, 31, 12));
    EXPECT_EQ(add_interval(ts(1999, 12, 31, 23, 59, 59, 999999), micros(1)), ts(2000, 1, 1));
    EXPECT_EQ(add_interval(ts(1996, 1, 31, 7, 45), months(1)), ts(1996, 2, 29, 7, 45));
    EXPECT_EQ(add_interval(ts(1999, 1, 31, 7, 45), months(1)), ts(1999, 2, 28, 7, 45));
    EXPECT_EQ(add_interval(ts(1970, 1, 1), days(-1)), ts(1969, 12, 31));
    EXPECT_EQ(add_interval(ts(1999, 11, 15, 1), months(3)), ts(2000, 2, 15, 1));
    EXPECT_EQ(add_interval(ts(2000, 2, 15, 1), months(-3)), ts(1999, 11, 15, 1));
    EXPECT_EQ(add_interval(ts(1600, 2, 29), months(12)), ts(1601, 2, 28));
    EXPECT_EQ(add_interval(ts(1600, 1, 31, 0, 0, 0, 1), months(1)), ts(1600, 2, 29, 0, 0, 0, 1));
    // Exactly at a midnight before 2000.
    EXPECT_EQ(add_interval(ts(1999, 12, 31), months(2)), ts(2000, 2, 29));
}

TEST(AddInterval, Saturates) {
    EXPECT_EQ(add_interval(kTimestampMax, days(1)), kTimestampMax);
    EXPECT_EQ(add_interval(kTimestampMax, days(-1)), kTimestampMax);  // infinity stays infinity
    EXPECT_EQ(add_interval(kTimestampMin, days(-1)), kTimestampMin);
    EXPECT_EQ(add_interval(kTimestampMin, months(5)), kTimestampMin);
    EXPECT_EQ(add_interval(kTimestampMax - 10, micros(100)), kTimestampMax);
    EXPECT_EQ(add_interval(kTimestampMin + 10, micros(-100)), kTimestampMin);
    EXPECT_EQ(add_interval(kTimestampMax - kDay, days(2)), kTimestampMax);
    EXPECT_EQ(add_interval(kTimestampMax - 1, months(12)), kTimestampMax);
    EXPECT_EQ(add_interval(kTimestampMin + 1, months(-12)), kTimestampMin);
    EXPECT_EQ(add_interval(kTimestampMax - 1, Interval{INT32_MAX, INT32_MAX, INT64_MAX}), kTimestampMax);
    EXPECT_EQ(add_interval(0, Interval{0, 0, INT64_MAX}), INT64_MAX);
    // Not saturating: just fits.
    EXPECT_EQ(add_interval(kTimestampMax - 100, micros(99)), kTimestampMax - 1);
}

TEST(IntervalLength, UsesThirtyDayMonths) {
    EXPECT_DOUBLE_EQ(interval_length_micros(months(1)), 30.0 * 86400e6);
    EXPECT_DOUBLE_EQ(interval_length_micros(months(3)), 90.0 * 86400e6);
    EXPECT_DOUBLE_EQ(interval_length_micros(days(7)), 7.0 * 86400e6);
    EXPECT_DOUBLE_EQ(interval_length_micros(micros(1500)), 1500.0);
    EXPECT_DOUBLE_EQ(interval_length_micros(Interval{1, 2, 3}), 32.0 * 86400e6 + 3.0);
    EXPECT_DOUBLE_EQ(interval_length_micros(Interval{}), 0.0);
    EXPECT_DOUBLE_EQ(interval_length_micros(Interval{1, -30, 0}), 0.0);
}

TEST(IntervalIsPositive, Cases) {
    EXPECT_FALSE(interval_is_positive(Interval{}));
    EXPECT_TRUE(interval_is_positive(micros(1)));
    EXPECT_TRUE(interval_is_positive(days(1)));
    EXPECT_TRUE(interval_is_positive(months(1)));
    EXPECT_TRUE(interval_is_positive(Interval{1, 2, 3}));
    EXPECT_FALSE(interval_is_positive(micros(-1)));
    EXPECT_FALSE(interval_is_positive(days(-1)));
    EXPECT_FALSE(interval_is_positive(months(-1)));
    // Mixed signs are rejected even when the total is positive.
    EXPECT_FALSE(interval_is_positive(Interval{1, -1, 0}));
    EXPECT_FALSE(interval_is_positive(Interval{0, 1, -1}));
    EXPECT_FALSE(interval_is_positive(Interval{-1, 40, 0}));
}
