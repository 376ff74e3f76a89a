// Shared helpers for the core unit tests (header only; not a test file itself).
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

#include "core/types.hpp"

namespace leadscore_test {

using leadscore::Interval;
using leadscore::MicroPoints;
using leadscore::Timestamp;

// Points given in whole millionths for readability: P(10) == 10 points.
constexpr MicroPoints P(long long whole) { return whole * 1000000LL; }

inline bool leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

inline int month_days(int y, int m) {
    static const int table[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && leap(y) ? 29 : table[m - 1];
}

// Days from 2000-01-01 to y-m-d by plain counting: deliberately independent of the
// civil-date algorithm used in src/core/timecalc.cpp.
inline std::int64_t days_since_2000(int y, int m, int d) {
    std::int64_t days = 0;
    if (y >= 2000) {
        for (int yy = 2000; yy < y; yy++) days += leap(yy) ? 366 : 365;
    } else {
        for (int yy = y; yy < 2000; yy++) days -= leap(yy) ? 366 : 365;
    }
    for (int mm = 1; mm < m; mm++) days += month_days(y, mm);
    return days + (d - 1);
}

// A UTC timestamp in PostgreSQL's representation (microseconds since 2000-01-01).
inline Timestamp ts(int y, int m, int d, int hh = 0, int mi = 0, int ss = 0, std::int64_t us = 0) {
    return days_since_2000(y, m, d) * 86400LL * 1000000LL +
           (static_cast<std::int64_t>(hh) * 3600 + mi * 60 + ss) * 1000000LL + us;
}

inline Interval months(std::int32_t n) { return Interval{n, 0, 0}; }
inline Interval days(std::int32_t n) { return Interval{0, n, 0}; }
inline Interval micros(std::int64_t n) { return Interval{0, 0, n}; }

constexpr std::int64_t kDay = 86400LL * 1000000LL;
constexpr std::int64_t kHour = 3600LL * 1000000LL;

}  // namespace leadscore_test
