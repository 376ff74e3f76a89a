// A model's stored per-lead state row: the one description of its columns, and the
// conversions between a row's Datums and StoredState / NewState that the reads, both write
// paths (SQL and direct) and track()'s DDL use.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/engine.hpp"
#include "core/summary.hpp"
#include "pg/boundary.hpp"

extern "C" {
#include "utils/rel.h"
}

namespace leadscore::pg {

// The columns of a state table (leadscore.lead_state's, plus the typed key "lead" that each
// model's table adds), in the order reads list them.
enum StateColumn : int {
    kStateLead,
    kStateModel,
    kStateLeadId,
    // The result columns: what both write paths set from a lead's new state.
    kStateScore,
    kStateFitScore,
    kStateEngagementScore,
    kStateStage,
    kStateDisqualified,
    kStateFitDisqualified,
    kStateStageSince,
    kStateScoredAt,
    kStateNextChange,
    kStateSummary,
    kStateColumnCount
};
constexpr int kFirstResultColumn = kStateScore;

struct StateColumnDef {
    const char* name;
    Oid type;        // InvalidOid for "lead": the lead key's own type
    Oid array_type;  // for the SQL path's unnest() arguments
};
const StateColumnDef& state_column(int column);
// Column names from `first` on, comma-separated, each prefixed ("u." ...).
std::string state_column_names(int first, const char* prefix = "");

// A state row as stored.
struct StoredState {
    std::string key;
    bool initialized = false;
    Summary summary;
    MicroPoints score = 0, fit = 0, engagement = 0;
    bool fit_disqualified = false, disqualified = false;
    std::optional<std::string> stage;
    std::optional<Timestamp> stage_since, next_change;
    Timestamp scored_at = 0;
};

// What to write for one lead.
struct NewState {
    std::string key;
    LeadScore result;
    bool fit_disqualified = false;
    Summary summary;
    std::optional<std::string> previous_stage;
    bool stage_changed = false;
    std::optional<Timestamp> stage_since;
};

// One row's values by StateColumn.
struct StateDatums {
    Datum values[kStateColumnCount] = {};
    bool nulls[kStateColumnCount] = {};
};

// What a caller needs decoded: the direct path reads only what applying deltas needs (no
// key text, score, engagement, disqualified, next_change or scored_at).
enum class StateFieldsNeeded { All, ForDeltas };

// The PostgreSQL half of decoding (detoasting, numeric and text output), kept apart so the
// C++ half can run under the caller's own error handling.
struct StateFields {
    const char* key = nullptr;
    const unsigned char* summary = nullptr;
    std::size_t summary_len = 0;
    const char* score = nullptr;
    const char* fit = nullptr;
    const char* engagement = nullptr;
    const char* stage = nullptr;
};
// Plain PostgreSQL code: call inside pg_guard. Strings are palloc'd in the current context.
void read_state_fields(const StateDatums& row, StateFieldsNeeded needed, StateFields& out);
// Pure C++: throws UserError (data corrupted) on an unreadable summary or number.
void parse_state_fields(const StateDatums& row, const StateFields& fields, StateFieldsNeeded needed,
                        StoredState& out);

// Sets the result columns of ns (summary: its stored form, serialized) scored as of as_of.
// Plain PostgreSQL code: call inside pg_guard.
void encode_results(const NewState& ns, const std::string& summary_bytes, Timestamp as_of, StateDatums& out);

// Attribute numbers of every StateColumn in a state table, checked by name and type against
// the description (key_type for "lead"); cached in `cache`. Plain PostgreSQL code: call
// inside pg_guard.
void resolve_state_attnums(Relation rel, Oid key_type, std::vector<std::int16_t>& cache);

}  // namespace leadscore::pg
