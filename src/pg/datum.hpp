// Conversions between PostgreSQL Datums and the core's values: text, text[], numeric points,
// timestamps, intervals and lead keys.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/types.hpp"
#include "pg/boundary.hpp"

namespace leadscore::pg {

// Guarded: these call PostgreSQL inside pg_guard themselves.
std::string text_to_string(Datum text_datum);
Datum string_to_text(const std::string& s);
// The elements of a text[] Datum (NULL elements as nullopt).
std::vector<std::optional<std::string>> text_array_elements(Datum array);
// A numeric Datum holding exactly these millionths.
Datum points_to_numeric(MicroPoints p);
// A JSON string literal ("null" for nullopt), for payloads this extension writes.
std::string json_string(const std::optional<std::string>& s);
// Text form of a timestamptz as PostgreSQL prints it (for the NOTIFY payload).
std::string timestamp_text(Timestamp t);
// The array type of an element type; throws when it has none.
Oid array_type_of(Oid element_type);
// The start of the current transaction: the as-of time of live scoring.
Timestamp transaction_now();

// Stored numbers to millionths: a stored value that does not parse is corruption (XX001).
MicroPoints parse_stored_points(const char* text);

// Plain PostgreSQL code: call these inside pg_guard.
Datum points_datum(MicroPoints p);
Datum text_datum(const std::string& s);
// text[] of the given strings.
Datum text_array_datum(const std::vector<std::string>& values);
// Text form of any value through its type's output function.
char* key_to_cstring(Datum d, Oid type);

// Interval Datum to the core's interval.
leadscore::Interval to_core_interval(Datum d);
// Time column value to the core's timestamp (timestamptz, timestamp as UTC, date at midnight UTC).
Timestamp to_core_time(Datum d, Oid type);
bool is_supported_time_type(Oid type);

// Text form of the values of one type; integers and strings skip the output function.
class TextOutput {
public:
    explicit TextOutput(Oid type = InvalidOid) : type_(type) {}
    // Plain PostgreSQL code: call inside pg_guard.
    void write(Datum d, std::string& out) const;
    // Looks the output function up now, its state kept in context (write otherwise does it on
    // first use, in the memory context current then). Inside pg_guard.
    void prepare(MemoryContext context) const;

private:
    Oid type_;
    mutable bool ready_ = false;
    mutable FmgrInfo fn_{};
};

// Text form of a SQL literal array ({"a","b"}), quoting every element.
std::string text_array_literal(const std::vector<std::optional<std::string>>& values);
std::string key_array_literal(const std::vector<std::string>& keys);

}  // namespace leadscore::pg
