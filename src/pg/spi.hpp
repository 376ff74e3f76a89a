// Small helpers around SPI; every call runs behind pg_guard.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "pg/pg.hpp"

extern "C" {
#include "executor/spi.h"
}

namespace leadscore::pg {

// Connects to SPI for the lifetime of the object. On an error the transaction aborts and
// PostgreSQL cleans up SPI itself, so the destructor finishes only on normal exit.
// Inside an InvokerTrigger the outermost connection runs as the trigger function's owner with
// search_path pinned to pg_catalog, pg_temp: what SECURITY DEFINER gave, paid only when SQL runs.
class SpiConnection {
public:
    SpiConnection();
    ~SpiConnection();
    SpiConnection(const SpiConnection&) = delete;
    SpiConnection& operator=(const SpiConnection&) = delete;

private:
    int exceptions_at_start_;
    bool switched_ = false;
    Oid saved_user_ = InvalidOid;
    int saved_security_context_ = 0;
    int guc_level_ = 0;
};

// Marks a trigger that runs with the invoker's rights (its direct heap and index work needs
// none); SQL it runs through SpiConnection switches to the function owner for its duration.
class InvokerTrigger {
public:
    explicit InvokerTrigger(FunctionCallInfo fcinfo);
    ~InvokerTrigger();
    InvokerTrigger(const InvokerTrigger&) = delete;
    InvokerTrigger& operator=(const InvokerTrigger&) = delete;

private:
    Oid previous_owner_;
};

// At the end of an aborted transaction no trigger or connection is left: forget them.
void reset_invoker_state();

// One SQL argument: its type and text form (NULL when absent); converted by the server.
struct SqlArg {
    Oid type;
    std::optional<std::string> text;
};

// Runs a statement with text arguments; returns SPI_processed. Results stay in SPI_tuptable.
std::uint64_t spi_exec(const std::string& sql, const std::vector<SqlArg>& args, bool read_only = false,
                       long max_rows = 0);

// Runs a prepared plan with binary arguments (nulls: 'n' marks NULL).
std::uint64_t spi_exec_plan(SPIPlanPtr plan, std::vector<Datum>& values, std::vector<char>& nulls);

// Builds a one-dimensional array Datum; call inside pg_guard.
Datum build_array(Oid element_type, const std::vector<Datum>& values, const std::vector<bool>& nulls);

// Values of the current SPI_tuptable.
std::optional<std::string> spi_text(std::uint64_t row, int col);
std::optional<Datum> spi_datum(std::uint64_t row, int col);

// Builds a text[] literal ({"a","b"}) from strings, quoting every element.
std::string text_array_literal(const std::vector<std::optional<std::string>>& values);

std::string quote_ident(const std::string& ident);
std::string quote_literal(const std::string& value);

}  // namespace leadscore::pg
