#pragma once
#include "guard.hpp"

#include <cstdint>
#include <optional>
#include <string>

#include "types.hpp"

namespace leadscore {

// Parses a decimal such as "-12.5" or "1e3" into millionths. Returns nullopt with a reason
// when the text is not a finite number, has more than 6 decimal places, or is too large.
// max_magnitude: rule values are limited to 1e12 points; stored sums may use the whole range.
std::optional<MicroPoints> parse_points(const std::string& text, std::string* reason,
                                        MicroPoints max_magnitude = kMaxPointsMagnitude);

// Formats millionths as the shortest exact decimal text ("145", "-2.5", "0.000001").
std::string format_points(MicroPoints value);

// The same shortest decimal as digits and a count of decimal places: -2.5 is {-25, 1}.
struct ScaledPoints {
    std::int64_t digits;
    int scale;
};
ScaledPoints scaled_points(MicroPoints value);

// 128-bit sums so that no realistic number of occurrences can overflow.
using WideSum = __int128;

// Clamps a wide sum back into MicroPoints, throwing when it exceeds the supported range.
MicroPoints narrow_points(WideSum sum, const char* what);

}  // namespace leadscore
