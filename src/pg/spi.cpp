// Running SQL through SPI.
#include <exception>

#include "pg/spi.hpp"

extern "C" {
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
}

namespace leadscore::pg {

namespace {

constexpr long kFetchBatch = 5000;

// Converts text arguments to Datums with their types' input functions; call inside pg_guard.
void convert_args(const std::vector<SqlArg>& args, std::vector<Datum>& values, std::vector<char>& nulls) {
    for (std::size_t i = 0; i < args.size(); i++) {
        if (!args[i].text) {
            nulls[i] = 'n';
            values[i] = (Datum)0;
            continue;
        }
        Oid input_fn, ioparam;
        getTypeInputInfo(args[i].type, &input_fn, &ioparam);
        values[i] = OidInputFunctionCall(input_fn, const_cast<char*>(args[i].text->c_str()), ioparam, -1);
    }
}

}  // namespace

SpiConnection::SpiConnection() : exceptions_at_start_(std::uncaught_exceptions()) {
    pg_guard([] {
        if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "leadscore: SPI_connect failed");
    });
}

SpiConnection::~SpiConnection() {
    if (std::uncaught_exceptions() > exceptions_at_start_) return;
    try {
        pg_guard([] { SPI_finish(); });
    } catch (...) {
    }
}

std::uint64_t spi_exec(const std::string& sql, const std::vector<SqlArg>& args, bool read_only, long max_rows) {
    std::vector<Oid> types;
    std::vector<Datum> values;
    std::vector<char> nulls;
    types.reserve(args.size());
    for (const auto& a : args) types.push_back(a.type);
    values.resize(args.size());
    nulls.resize(args.size(), ' ');
    std::uint64_t processed = 0;
    pg_guard([&] {
        convert_args(args, values, nulls);
        // Fresh snapshots (read_only = false) so reads after a lock wait see committed work;
        // parallel workers may only read.
        int rc = SPI_execute_with_args(sql.c_str(), static_cast<int>(args.size()), types.data(), values.data(),
                                       nulls.data(), IsInParallelMode(), max_rows);
        if (rc < 0) elog(ERROR, "leadscore: SPI failed (%d) on: %s", rc, sql.c_str());
        processed = SPI_processed;
    });
    return processed;
}

std::uint64_t spi_exec_plan(SPIPlanPtr plan, std::vector<Datum>& values, std::vector<char>& nulls) {
    std::uint64_t processed = 0;
    pg_guard([&] {
        int rc = SPI_execute_plan(plan, values.data(), nulls.data(), IsInParallelMode(), 0);
        if (rc < 0) elog(ERROR, "leadscore: SPI_execute_plan failed (%d)", rc);
        processed = SPI_processed;
    });
    return processed;
}

Datum build_array(Oid element_type, const std::vector<Datum>& values, const std::vector<bool>& nulls) {
    int16 typlen;
    bool byval;
    char align;
    get_typlenbyvalalign(element_type, &typlen, &byval, &align);
    int dims[1] = {static_cast<int>(values.size())};
    int lbs[1] = {1};
    bool* null_flags = static_cast<bool*>(palloc(sizeof(bool) * (values.size() + 1)));
    for (std::size_t i = 0; i < values.size(); i++) null_flags[i] = nulls[i];
    ArrayType* arr = construct_md_array(const_cast<Datum*>(values.data()), null_flags, 1, dims, lbs, element_type,
                                        typlen, byval, align);
    return PointerGetDatum(arr);
}

std::optional<std::string> spi_text(std::uint64_t row, int col) {
    std::optional<std::string> out;
    pg_guard([&] {
        char* v = SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col);
        if (v) {
            out.emplace(v);
            pfree(v);
        }
    });
    return out;
}

std::optional<Datum> spi_datum(std::uint64_t row, int col) {
    std::optional<Datum> out;
    pg_guard([&] {
        bool isnull = false;
        Datum d = SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, &isnull);
        if (!isnull) out = d;
    });
    return out;
}

SPIPlanPtr prepare_kept_plan(const std::string& sql, const std::vector<Oid>& types, bool custom) {
    SPIPlanPtr plan = nullptr;
    std::vector<Oid> argtypes = types;
    pg_guard([&] {
        plan = SPI_prepare_cursor(sql.c_str(), static_cast<int>(argtypes.size()), argtypes.data(),
                                  custom ? CURSOR_OPT_CUSTOM_PLAN : CURSOR_OPT_GENERIC_PLAN);
        if (!plan) elog(ERROR, "leadscore: could not prepare: %s", sql.c_str());
        SPI_keepplan(plan);
    });
    return plan;
}

Portal open_cursor(const std::string& sql, const std::vector<SqlArg>& args) {
    Portal portal = nullptr;
    std::vector<Oid> types;
    std::vector<Datum> values(args.size());
    std::vector<char> nulls(args.size(), ' ');
    for (const auto& a : args) types.push_back(a.type);
    pg_guard([&] {
        convert_args(args, values, nulls);
        portal = SPI_cursor_open_with_args(nullptr, sql.c_str(), static_cast<int>(args.size()), types.data(),
                                           values.data(), nulls.data(), IsInParallelMode(), 0);
    });
    return portal;
}

Portal open_plan_cursor(SPIPlanPtr plan, std::vector<Datum>& values, std::vector<char>& nulls) {
    Portal portal = nullptr;
    pg_guard([&] { portal = SPI_cursor_open(nullptr, plan, values.data(), nulls.data(), IsInParallelMode()); });
    return portal;
}

std::uint64_t fetch_batch(Portal portal) {
    std::uint64_t n = 0;
    pg_guard([&] {
        SPI_cursor_fetch(portal, true, kFetchBatch);
        n = SPI_processed;
    });
    return n;
}

void close_cursor(Portal portal) {
    pg_guard([&] { SPI_cursor_close(portal); });
}

std::string quote_ident(const std::string& ident) {
    std::string out;
    pg_guard([&] { out = quote_identifier(ident.c_str()); });
    return out;
}

std::string quote_literal(const std::string& value) {
    std::string out = "'";
    bool backslash = false;
    for (char c : value) {
        if (c == '\'') out += '\'';
        if (c == '\\') backslash = true;
        out += c;
    }
    out += '\'';
    return backslash ? "E" + [&] {
        std::string escaped = "'";
        for (char c : value) {
            if (c == '\'' || c == '\\') escaped += c;
            escaped += c;
        }
        return escaped + "'";
    }() : out;
}

}  // namespace leadscore::pg
