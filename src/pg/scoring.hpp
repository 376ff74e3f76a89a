// Scoring leads from raw rows and keeping the stored state of a tracked model.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/deltas.hpp"
#include "core/engine.hpp"
#include "pg/catalog.hpp"

namespace leadscore::pg {

struct FitFacts {
    MicroPoints fit = 0;
    bool disqualified = false;
    std::vector<std::int64_t> matches;
};

struct ActivityMatch {
    std::string key;
    std::string type;
    Timestamp time = 0;
    std::vector<std::int64_t> rules;
};

// Matches one deformed activity row; false when its lead, type or time is NULL.
bool match_activity_row(const CompiledModel& cm, const Matcher& matcher, const RowLayout& layout,
                        const Datum* values, const bool* nulls, ActivityMatch& out);
// Evaluates the fit rules on one deformed lead row; returns the key text in key_out.
FitFacts match_lead_row(const CompiledModel& cm, const RowLayout& layout, const Datum* values, const bool* nulls,
                        std::string& key_out);

// Builds summaries from the activity table (every lead, or only the given keys). Needs SPI.
void collect_activities(const CompiledModel& cm, const std::vector<std::string>* keys,
                        std::map<std::string, Summary>& out);
// Fit facts of the leads that exist in the leads table (every lead, or the given keys). Needs SPI.
void collect_fits(const CompiledModel& cm, const std::vector<std::string>* keys,
                  std::map<std::string, FitFacts>& out);

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

enum class StageMode { Fresh, KeepSticky };

// Stage changes that still need their history rows and notifications.
struct StageChange {
    std::string key;
    std::optional<std::string> from, to;
    MicroPoints score = 0;
};

NewState compute_new_state(const Model& model, const std::string& key, const StoredState* stored,
                           Summary summary, MicroPoints fit, bool fit_disqualified, Timestamp as_of, StageMode mode);

// State table operations for one tracked model. All need SPI.
class StateStore {
public:
    explicit StateStore(CompiledModel& cm);
    // Takes the state table lock writers use (row exclusive), processing invalidations.
    void lock_for_write();
    // Per-(model, lead) transaction locks shared by the lead and activity triggers.
    void lock_keys(const std::vector<std::string>& keys);
    // Blocks every writer of this model until commit (rule changes, rescore).
    void lock_exclusive();
    // Inserts placeholder rows for keys that have none (only leads present in the leads
    // table when one is tracked); in key order.
    void create_placeholders(const std::vector<std::string>& keys, Timestamp as_of);
    // Locks and reads the rows of the given keys (all rows when keys is null), in key order.
    std::vector<StoredState> lock_and_read(const std::vector<std::string>* keys, bool lock = true);
    std::vector<StoredState> read_due(Timestamp as_of);
    void write(const std::vector<NewState>& states, Timestamp as_of, bool notify);
    // Inserts stage history rows and sends the notifications. Needs SPI.
    void record_stage_changes(const std::vector<StageChange>& changes, Timestamp as_of, bool notify);
    // The activity trigger's fast path: applies the deltas of keys whose state row exists and
    // holds a consistent summary, through the table AM and the key index (no SQL, no SPI).
    // Needs grouped deltas. Returns the keys left for the SQL path; appends stage changes to record.
    std::vector<std::string> apply_deltas_directly(const DeltaMap& deltas, Timestamp as_of,
                                                   std::vector<StageChange>& stage_changes);
    void remove(const std::vector<std::string>& keys);
    void remove_absent_leads(const std::vector<std::string>* keys);
    Oid relid() const { return relid_; }

private:
    CompiledModel& cm_;
    std::string table_;
    Oid relid_ = InvalidOid;
};

// Recomputes every lead of the model from scratch as of a time; returns how many stored
// scores changed. Caller holds the exclusive state lock.
std::int64_t rescore_model(const std::string& model, Timestamp as_of, bool notify, std::int64_t* leads_scored);
// Applies expiry and decay due by as_of; returns how many stored scores changed.
std::int64_t refresh_model(const std::string& model, Timestamp as_of);

Timestamp transaction_now();
std::string key_array_literal(const std::vector<std::string>& keys);
Datum points_to_numeric(MicroPoints p);

}  // namespace leadscore::pg
