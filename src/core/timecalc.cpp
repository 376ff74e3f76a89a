#include "timecalc.hpp"

namespace leadscore {
namespace {

// Howard Hinnant's civil-date algorithms, days counted from 1970-01-01.
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = static_cast<unsigned>(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

void civil_from_days(std::int64_t z, std::int64_t& y, unsigned& m, unsigned& d) {
    z += 719468;
    const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = static_cast<unsigned>(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    y = static_cast<std::int64_t>(yoe) + era * 400;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    d = doy - (153 * mp + 2) / 5 + 1;
    m = mp < 10 ? mp + 3 : mp - 9;
    y += m <= 2;
}

bool is_leap(std::int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

unsigned days_in_month(std::int64_t y, unsigned m) {
    static const unsigned table[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : table[m - 1];
}

// Days between 1970-01-01 and 2000-01-01.
constexpr std::int64_t kPgEpochDays = 10957;

Timestamp saturating_add(Timestamp a, __int128 b) {
    __int128 r = static_cast<__int128>(a) + b;
    if (r > static_cast<__int128>(kTimestampMax)) return kTimestampMax;
    if (r < static_cast<__int128>(kTimestampMin)) return kTimestampMin;
    return static_cast<Timestamp>(r);
}

}  // namespace

Timestamp add_interval(Timestamp t, const Interval& iv) {
    if (t == kTimestampMax || t == kTimestampMin) return t;
    if (iv.months != 0) {
        std::int64_t day_index = t / kMicrosPerDay;
        std::int64_t time_of_day = t % kMicrosPerDay;
        if (time_of_day < 0) {
            time_of_day += kMicrosPerDay;
            day_index -= 1;
        }
        std::int64_t y;
        unsigned m, d;
        civil_from_days(day_index + kPgEpochDays, y, m, d);
        std::int64_t total_months = y * 12 + (m - 1) + iv.months;
        std::int64_t ny = total_months >= 0 ? total_months / 12 : -((-total_months + 11) / 12);
        unsigned nm = static_cast<unsigned>(total_months - ny * 12) + 1;
        unsigned dim = days_in_month(ny, nm);
        unsigned nd = d > dim ? dim : d;
        std::int64_t new_days = days_from_civil(ny, nm, nd) - kPgEpochDays;
        t = saturating_add(0, static_cast<__int128>(new_days) * kMicrosPerDay + time_of_day);
    }
    t = saturating_add(t, static_cast<__int128>(iv.days) * kMicrosPerDay);
    t = saturating_add(t, iv.micros);
    return t;
}

double interval_length_micros(const Interval& iv) {
    return static_cast<double>(iv.months) * 30.0 * static_cast<double>(kMicrosPerDay) +
           static_cast<double>(iv.days) * static_cast<double>(kMicrosPerDay) +
           static_cast<double>(iv.micros);
}

bool interval_is_positive(const Interval& iv) {
    return iv.months >= 0 && iv.days >= 0 && iv.micros >= 0 && interval_length_micros(iv) > 0;
}

}  // namespace leadscore
