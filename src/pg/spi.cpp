#include <exception>

#include "pg/spi.hpp"

extern "C" {
#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/syscache.h"
#include "utils/builtins.h"
#include "utils/array.h"
#include "utils/lsyscache.h"
}

namespace leadscore::pg {

namespace {

// Owner of the running invoker-rights trigger function (InvalidOid outside one).
Oid trigger_owner = InvalidOid;
// Connections that switched to trigger_owner and are still open.
int owner_switches = 0;

}  // namespace

InvokerTrigger::InvokerTrigger(FunctionCallInfo fcinfo) : previous_owner_(trigger_owner) {
    Oid owner = InvalidOid;
    pg_guard([&] {
        HeapTuple tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(fcinfo->flinfo->fn_oid));
        if (!HeapTupleIsValid(tuple)) elog(ERROR, "leadscore: cache lookup failed for function %u", fcinfo->flinfo->fn_oid);
        owner = reinterpret_cast<Form_pg_proc>(GETSTRUCT(tuple))->proowner;
        ReleaseSysCache(tuple);
    });
    trigger_owner = owner;
}

InvokerTrigger::~InvokerTrigger() { trigger_owner = previous_owner_; }

SpiConnection::SpiConnection() : exceptions_at_start_(std::uncaught_exceptions()) {
    if (OidIsValid(trigger_owner) && owner_switches == 0) {
        pg_guard([&] {
            GetUserIdAndSecContext(&saved_user_, &saved_security_context_);
            SetUserIdAndSecContext(trigger_owner, saved_security_context_ | SECURITY_LOCAL_USERID_CHANGE);
            guc_level_ = NewGUCNestLevel();
            (void)set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
                                    GUC_ACTION_SAVE, true, 0, false);
        });
        switched_ = true;
        owner_switches++;
    }
    try {
        pg_guard([] {
            if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "leadscore: SPI_connect failed");
        });
    } catch (...) {
        // No destructor runs for a constructor that throws: undo the switch here.
        if (switched_) {
            owner_switches--;
            SetUserIdAndSecContext(saved_user_, saved_security_context_);
        }
        throw;
    }
}

void reset_invoker_state() {
    trigger_owner = InvalidOid;
    owner_switches = 0;
}

SpiConnection::~SpiConnection() {
    if (switched_) owner_switches--;
    if (std::uncaught_exceptions() > exceptions_at_start_) {
        // The abort that follows restores the settings; the user id is put back now so no
        // caller code runs as the owner meanwhile.
        if (switched_) SetUserIdAndSecContext(saved_user_, saved_security_context_);
        return;
    }
    try {
        pg_guard([] { SPI_finish(); });
    } catch (...) {
    }
    if (!switched_) return;
    try {
        pg_guard([&] { AtEOXact_GUC(true, guc_level_); });
    } catch (...) {
    }
    SetUserIdAndSecContext(saved_user_, saved_security_context_);
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
