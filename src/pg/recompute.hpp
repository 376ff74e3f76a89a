// Scoring a lead's new state, and recomputing stored state: rescore (everything, from raw
// rows) and refresh (expiry and decay that came due).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "pg/compiled_model.hpp"
#include "pg/state_row.hpp"

namespace leadscore::pg {

enum class StageMode { Fresh, KeepSticky };

// A lead's new state from its summary and fit as of a time, with its stage change against
// the stored row (KeepSticky: a sticky stage is not left downward, as refresh() wants).
NewState compute_new_state(const Model& model, const std::string& key, const StoredState* stored,
                           Summary summary, MicroPoints fit, bool fit_disqualified, Timestamp as_of, StageMode mode);
// The same without copying the summary: the result's summary is left empty.
NewState compute_new_results(const Model& model, const std::string& key, const StoredState* stored,
                             const Summary& summary, MicroPoints fit, bool fit_disqualified, Timestamp as_of,
                             StageMode mode);
// The same from a result already computed (its stage change against the stored row).
NewState new_state_of(const Model& model, const std::string& key, const StoredState* stored, LeadScore result,
                      bool fit_disqualified, Summary summary, Timestamp as_of, StageMode mode);

// Recomputes every lead of the model from scratch as of a time; returns how many stored
// scores changed. Takes the exclusive state lock itself.
std::int64_t rescore_model(const std::string& model, Timestamp as_of, bool notify, std::int64_t* leads_scored);
// The same for a compiled model (a live trigger's, on a Citus node's shards).
std::int64_t rescore_model(std::shared_ptr<CompiledModel> cm, Timestamp as_of, bool notify,
                           std::int64_t* leads_scored);
// Whether a stored row already holds a new state (`summary`: the new summary as stored).
bool same_result(const StoredState& s, const NewState& n, const Summary& summary);
// The same for the result columns alone (the summary unchanged).
bool same_results(const StoredState& s, const NewState& n);
// Builds leads' state from their raw rows (state rows created first); the caller holds the
// model's exclusive state lock.
void rebuild_leads(const std::shared_ptr<CompiledModel>& cm, const std::vector<std::string>& keys, Timestamp as_of);
// Rescores leads whose row, related rows or existence changed, under their key locks: fit from
// their rows, and their activities matched again when activity rules read the lead.
void resync_leads(std::shared_ptr<CompiledModel> cm, const std::vector<std::string>& keys);
// A stored lead's state as refresh() computes it as of a time (a sticky stage is kept; a summary
// pruned past as_of is replaced by the lead's entry in rebuilt, read from its raw rows).
NewState refreshed_state(const Model& model, const StoredState& s, std::map<std::string, Summary>& rebuilt,
                         Timestamp as_of);
// Applies expiry and decay due by as_of; returns how many stored scores changed.
std::int64_t refresh_model(const std::string& model, Timestamp as_of);

}  // namespace leadscore::pg
