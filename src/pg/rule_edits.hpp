// Rule edits that cost what they change: what an edit of the rule tables invalidates in the
// stored state, and the recompute that repairs exactly that.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>

#include "pg/boundary.hpp"

extern "C" {
#include "commands/trigger.h"
}

namespace leadscore::pg {

// What one model's stored state needs after an edit.
struct EditPlan {
    bool full = false;         // rebuild everything from raw rows (rescore)
    bool refit = false;        // fit rules or conditions changed: read the leads (and related) tables
    bool recompute = false;    // every lead's score may change: recompute all from stored summaries
    // Activity types whose leads' scores may change (an activity rule of that type was edited):
    // only the leads that have rows of these types are recomputed.
    std::set<std::string> types;
    // Activity rules whose occurrences must be collected again from the rows of their types.
    std::set<std::int64_t> rematch;
    // Activity rules enabled again: collected again only when the stored summaries were built
    // before disabled rules' occurrences were kept (tracking.disabled_rules_matched).
    std::set<std::int64_t> enabled;
    // Only what rules match changed (conditions, new rules): a lead whose summary the edit
    // leaves as stored keeps its results.
    bool summaries_only = false;
    // Rematched rules whose edit changed only conditions on the lead (or a related row), with
    // the condition groups those were in: when such a rule has one group, only the leads whose
    // lead-side test now differs from what their summary shows can change.
    std::map<std::int64_t, std::set<std::int64_t>> lead_side_groups;
    // A fit-rule edit that changed only the points of rules enabled before and after, without
    // multiply_by: what each such rule now adds to the fit of a lead that passes it (the
    // stored fits are exact, so the leads table is read only for those rules' tests).
    bool fit_points_only = false;
    std::map<std::int64_t, MicroPoints> fit_point_deltas;
    bool any() const { return full || refit || recompute || !types.empty() || !rematch.empty(); }
};

// The plans of the models an AFTER statement trigger's edit of a rule table touches, from its
// transition tables (table: the rule table's name). Needs SPI.
std::map<std::string, EditPlan> plan_rule_edit(const std::string& table, TriggerData* trig);

// A points-only fit edit adds its deltas to the stored fits, so it needs them as they were when
// its rule rows were written: every trigger and function that may write stored state notes it
// (note_state_writer), the fit rules' BEFORE row trigger notes when their rows are written, and
// the edit falls back to reading every fit when something wrote in between (one query's
// data-modifying CTEs: their AFTER triggers all fire at the end, seeing the final rules).
void note_state_writer();
void note_fit_rule_rows_written();
bool state_written_since_fit_rule_rows();

// Applies a plan to a tracked model as of a time, under the model's exclusive state lock.
// Returns how many stored scores changed.
std::int64_t apply_edit_plan(const std::string& model, const EditPlan& plan, Timestamp as_of);

}  // namespace leadscore::pg
