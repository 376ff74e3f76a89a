#pragma once
#include "guard.hpp"

#include "types.hpp"

namespace leadscore {

// t + interval, with month and day arithmetic done on the UTC calendar (a month added to
// Jan 31 gives the last day of February, as PostgreSQL does). Saturates at the range ends.
Timestamp add_interval(Timestamp t, const Interval& iv);

// An interval's length in microseconds using PostgreSQL's epoch convention
// (1 month = 30 days, 1 day = 24 hours); used for half-lives.
double interval_length_micros(const Interval& iv);

// True when every component is >= 0 and the total length is > 0.
bool interval_is_positive(const Interval& iv);

}  // namespace leadscore
