// Running SQL through SPI: connections, statements, kept plans and cursor scans; every call
// runs behind pg_guard.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "pg/boundary.hpp"
#include "pg/rights.hpp"

extern "C" {
#include "executor/spi.h"
}

namespace leadscore::pg {

// Connects to SPI for the lifetime of the object, with the rights OwnerRights gives. On an
// error the transaction aborts and PostgreSQL cleans up SPI itself, so the destructor finishes
// only on normal exit.
class SpiConnection {
public:
    SpiConnection();
    ~SpiConnection();
    SpiConnection(const SpiConnection&) = delete;
    SpiConnection& operator=(const SpiConnection&) = delete;

private:
    OwnerRights rights_;
    int exceptions_at_start_;
};

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

// A generic plan kept for the backend's life (SPI_keepplan); free it with SPI_freeplan.
// custom: planned again with each execution's values (Citus plans distributed statements
// only with their parameters' values).
SPIPlanPtr prepare_kept_plan(const std::string& sql, const std::vector<Oid>& types, bool custom = false);

// Builds a one-dimensional array Datum; call inside pg_guard.
Datum build_array(Oid element_type, const std::vector<Datum>& values, const std::vector<bool>& nulls);

// Values of the current SPI_tuptable.
std::optional<std::string> spi_text(std::uint64_t row, int col);
std::optional<Datum> spi_datum(std::uint64_t row, int col);

// Runs a query through a cursor and hands each row (tuple, descriptor) to on_row, a batch at a
// time, checking for interrupts between batches.
Portal open_cursor(const std::string& sql, const std::vector<SqlArg>& args);
// A cursor over a prepared plan with its arguments in binary form.
Portal open_plan_cursor(SPIPlanPtr plan, std::vector<Datum>& values, std::vector<char>& nulls);
// The next batch of rows in SPI_tuptable; 0 at the end.
std::uint64_t fetch_batch(Portal portal);
void close_cursor(Portal portal);
template <class F>
void spi_scan(const std::string& sql, const std::vector<SqlArg>& args, F&& on_row) {
    Portal portal = open_cursor(sql, args);
    while (const std::uint64_t n = fetch_batch(portal)) {
        SPITupleTable* table = SPI_tuptable;
        for (std::uint64_t i = 0; i < n; i++) on_row(table->vals[i], table->tupdesc);
        pg_guard([&] { SPI_freetuptable(table); });
        check_for_interrupts();
    }
    close_cursor(portal);
}

std::string quote_ident(const std::string& ident);
std::string quote_literal(const std::string& value);

}  // namespace leadscore::pg
