// Conversions between PostgreSQL Datums and the core's values.
#include <cstring>

#include "core/decimal.hpp"
#include "pg/datum.hpp"

extern "C" {
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"
}

namespace leadscore::pg {

std::string text_to_string(Datum text_datum) {
    std::string out;
    pg_guard([&] {
        text* t = DatumGetTextPP(text_datum);
        out.assign(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
    });
    return out;
}

Datum string_to_text(const std::string& s) {
    Datum d = 0;
    pg_guard([&] { d = text_datum(s); });
    return d;
}

std::vector<std::optional<std::string>> text_array_elements(Datum array) {
    std::vector<std::optional<std::string>> out;
    pg_guard([&] {
        ArrayType* arr = DatumGetArrayTypeP(array);
        Datum* elems;
        bool* nulls;
        int n;
        deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
        out.reserve(static_cast<std::size_t>(n));
        for (int i = 0; i < n; i++) {
            if (nulls[i])
                out.emplace_back(std::nullopt);
            else
                out.emplace_back(std::string(VARDATA_ANY(elems[i]), VARSIZE_ANY_EXHDR(elems[i])));
        }
    });
    return out;
}

Datum points_datum(MicroPoints p) {
    // Built from digits and scale, not parsed from text: the same numeric numeric_in gives.
    const ScaledPoints s = scaled_points(p);
    return NumericGetDatum(int64_div_fast_to_numeric(s.digits, s.scale));
}

Datum points_to_numeric(MicroPoints p) {
    Datum d = 0;
    pg_guard([&] { d = points_datum(p); });
    return d;
}

MicroPoints parse_stored_points(const char* text) {
    std::string reason;
    const std::optional<MicroPoints> v = parse_points(text, &reason, INT64_MAX);
    if (!v)
        raise(sqlstate::kDataCorrupted, std::string("leadscore: stored score \"") + text + "\" is unreadable: " + reason);
    return *v;
}

std::string timestamp_text(Timestamp t) {
    std::string out;
    pg_guard([&] { out = timestamptz_to_str(static_cast<TimestampTz>(t)); });
    return out;
}

Oid array_type_of(Oid element_type) {
    Oid t = InvalidOid;
    pg_guard([&] {
        t = get_array_type(element_type);
        if (!OidIsValid(t)) elog(ERROR, "leadscore: type %u has no array type", element_type);
    });
    return t;
}

Timestamp transaction_now() { return static_cast<Timestamp>(GetCurrentTransactionStartTimestamp()); }

Datum text_datum(const std::string& s) {
    return PointerGetDatum(cstring_to_text_with_len(s.data(), static_cast<int>(s.size())));
}

Datum text_array_datum(const std::vector<std::string>& values) {
    Datum* elems = static_cast<Datum*>(palloc(sizeof(Datum) * (values.size() + 1)));
    for (std::size_t i = 0; i < values.size(); i++) elems[i] = text_datum(values[i]);
    return PointerGetDatum(construct_array(elems, static_cast<int>(values.size()), TEXTOID, -1, false, TYPALIGN_INT));
}

char* key_to_cstring(Datum d, Oid type) {
    Oid out_fn;
    bool varlena;
    getTypeOutputInfo(type, &out_fn, &varlena);
    return OidOutputFunctionCall(out_fn, d);
}

leadscore::Interval to_core_interval(Datum d) {
    const ::Interval* iv = reinterpret_cast<const ::Interval*>(DatumGetPointer(d));
    leadscore::Interval out;
    out.months = iv->month;
    out.days = iv->day;
    out.micros = iv->time;
    return out;
}

bool is_supported_time_type(Oid type) { return type == TIMESTAMPTZOID || type == TIMESTAMPOID || type == DATEOID; }

Timestamp to_core_time(Datum d, Oid type) {
    if (type == DATEOID) {
        DateADT day = DatumGetDateADT(d);
        if (DATE_NOT_FINITE(day)) return day < 0 ? kTimestampMin : kTimestampMax;
        return static_cast<Timestamp>(day) * kMicrosPerDay;
    }
    // timestamptz and timestamp share the representation; timestamp is read as UTC.
    TimestampTz t = DatumGetTimestampTz(d);
    if (t == DT_NOBEGIN) return kTimestampMin;
    if (t == DT_NOEND) return kTimestampMax;
    return t;
}

void TextOutput::prepare(MemoryContext context) const {
    if (ready_ || type_ == INT2OID || type_ == INT4OID || type_ == INT8OID || type_ == TEXTOID || type_ == VARCHAROID)
        return;
    Oid fn;
    bool varlena;
    getTypeOutputInfo(type_, &fn, &varlena);
    fmgr_info_cxt(fn, &fn_, context);
    ready_ = true;
}

void TextOutput::write(Datum d, std::string& out) const {
    char buf[MAXINT8LEN + 1];
    switch (type_) {
        case INT2OID:
            out.assign(buf, static_cast<std::size_t>(pg_itoa(DatumGetInt16(d), buf)));
            return;
        case INT4OID:
            out.assign(buf, static_cast<std::size_t>(pg_ltoa(DatumGetInt32(d), buf)));
            return;
        case INT8OID:
            out.assign(buf, static_cast<std::size_t>(pg_lltoa(DatumGetInt64(d), buf)));
            return;
        case TEXTOID:
        case VARCHAROID: {
            text* t = DatumGetTextPP(d);
            out.assign(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
            if (reinterpret_cast<Pointer>(t) != DatumGetPointer(d)) pfree(t);
            return;
        }
        default: {
            prepare(CurrentMemoryContext);
            char* c = OutputFunctionCall(&fn_, d);
            out.assign(c);
            pfree(c);
        }
    }
}

std::string text_array_literal(const std::vector<std::optional<std::string>>& values) {
    std::string out = "{";
    for (std::size_t i = 0; i < values.size(); i++) {
        if (i) out += ',';
        if (!values[i]) {
            out += "NULL";
            continue;
        }
        out += '"';
        for (char c : *values[i]) {
            if (c == '"' || c == '\\') out += '\\';
            out += c;
        }
        out += '"';
    }
    out += '}';
    return out;
}

std::string key_array_literal(const std::vector<std::string>& keys) {
    std::vector<std::optional<std::string>> v(keys.begin(), keys.end());
    return text_array_literal(v);
}

std::string json_string(const std::optional<std::string>& s) {
    if (!s) return "null";
    std::string out = "\"";
    for (unsigned char c : *s) {
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                if (c < 0x20) {
                    static const char* const hex = "0123456789abcdef";
                    out += "\\u00";
                    out += hex[c >> 4];
                    out += hex[c & 15];
                } else {
                    out += static_cast<char>(c);
                }
        }
    }
    return out + "\"";
}


}  // namespace leadscore::pg
