#pragma once
#include "guard.hpp"

#include <cstdint>
#include <stdexcept>
#include <string>

namespace leadscore {

// Microseconds since 2000-01-01 00:00:00 UTC (PostgreSQL's timestamptz epoch).
using Timestamp = std::int64_t;
// Points in millionths: integer arithmetic keeps incremental and from-scratch sums identical.
using MicroPoints = std::int64_t;

constexpr Timestamp kTimestampMin = INT64_MIN;
constexpr Timestamp kTimestampMax = INT64_MAX;
constexpr std::int64_t kMicrosPerSecond = 1000000;
constexpr std::int64_t kMicrosPerDay = 86400LL * kMicrosPerSecond;
constexpr MicroPoints kPointScale = 1000000;
// Largest accepted magnitude of a point value, a cap or a score bound (in points).
constexpr MicroPoints kMaxPointsMagnitude = 1000000000000LL * kPointScale;  // 1e12 points
// An occurrence of a rule without multiply_by carries no value.
constexpr MicroPoints kNoValue = INT64_MIN;

// PostgreSQL interval: months, days and microseconds are kept apart because they are
// calendar units of different length.
struct Interval {
    std::int32_t months = 0;
    std::int32_t days = 0;
    std::int64_t micros = 0;
    bool operator==(const Interval& o) const {
        return months == o.months && days == o.days && micros == o.micros;
    }
};

// Error caused by user input (bad rule, bad argument); carries an SQLSTATE.
class UserError : public std::runtime_error {
public:
    UserError(const std::string& sqlstate, const std::string& message,
              const std::string& detail = std::string(), const std::string& hint = std::string())
        : std::runtime_error(message), sqlstate_(sqlstate), detail_(detail), hint_(hint) {}
    const std::string& sqlstate() const { return sqlstate_; }
    const std::string& detail() const { return detail_; }
    const std::string& hint() const { return hint_; }

private:
    std::string sqlstate_;
    std::string detail_;
    std::string hint_;
};

namespace sqlstate {
inline const char* const kInvalidParameterValue = "22023";
inline const char* const kNumericValueOutOfRange = "22003";
inline const char* const kInvalidTextRepresentation = "22P02";
inline const char* const kCheckViolation = "23514";
inline const char* const kUndefinedObject = "42704";
inline const char* const kInvalidRegularExpression = "2201B";
inline const char* const kDataCorrupted = "XX001";
inline const char* const kInternalError = "XX000";
inline const char* const kFeatureNotSupported = "0A000";
inline const char* const kObjectNotInPrerequisiteState = "55000";
inline const char* const kDatatypeMismatch = "42804";
inline const char* const kUndefinedColumn = "42703";
}  // namespace sqlstate

}  // namespace leadscore
