// Matching raw rows against a model's rules: where the tracked columns are in a row, which
// activity rules a row matches, a lead row's fit, and scans of the tracked tables.
#pragma once

#include <functional>
#include <map>
#include <set>
#include <string>
#include <unordered_set>
#include <vector>

#include "core/summary_builder.hpp"
#include "pg/compiled_model.hpp"

extern "C" {
#include "access/tupdesc.h"
}

namespace leadscore::pg {

// What a lead's row (with its related rows) gives: its fit, and the results of the lead-side
// conditions that activity rules read (lead_matcher order).
struct FitFacts {
    MicroPoints fit = 0;
    bool disqualified = false;
    std::vector<FitMatch> matches;
    std::vector<char> conditions;
};
using LeadFactsMap = std::map<std::string, FitFacts>;

struct ActivityMatch {
    std::string key;
    std::string type;
    Timestamp time = 0;
    std::vector<std::int64_t> rules;
    std::vector<MicroPoints> values;  // multiply_by value of each matched rule (kNoValue: none)
};

// The lead-side condition results for a key, for models whose activity rules read the lead.
using LeadConditions = std::function<const std::vector<char>&(const std::string& key)>;

// Resolves the tracked columns in a tuple descriptor; throws if one is missing.
RowLayout activity_layout(const CompiledModel& cm, TupleDesc desc, const Matcher& matcher, bool need_lead = true);
// The lead row (lead_row_query's result): key and the lead matcher's columns.
RowLayout lead_layout(const CompiledModel& cm, TupleDesc desc);
// The leads table itself: key and the columns whose change can change a score.
RowLayout lead_table_layout(const CompiledModel& cm, TupleDesc desc);

// Matches one deformed activity row; false when its lead, type or time is NULL. lead_conditions
// is needed when cm.activity_reads_lead.
bool match_activity_row(const CompiledModel& cm, const Matcher& matcher, const RowLayout& layout,
                        const Datum* values, const bool* nulls, ActivityMatch& out,
                        const LeadConditions* lead_conditions = nullptr);
// The lead-side results for keys from facts collected for them (absent leads: all NULL).
LeadConditions lead_conditions_from(const CompiledModel& cm, const LeadFactsMap& facts);
// Whether a lead-side condition (index into cm.lead_matcher) holds on a deformed lead row, whose
// matcher columns are at attnos columns; evaluated once per row, kept in result (-1: not yet).
// Plain PostgreSQL code: call inside pg_guard.
bool lead_condition_holds(const Matcher& m, int index, const std::vector<int>& columns, const Datum* values,
                          const bool* nulls, std::vector<signed char>& result);
// Whether a fit rule's tests (inline condition and condition groups) hold on such a row.
bool fit_rule_holds(const CompiledModel& cm, const FitRuleSpec& rule, const RuleRefs& refs,
                    const std::vector<int>& columns, const Datum* values, const bool* nulls,
                    std::vector<signed char>& result);
// What a read of lead rows is for: Everything (fit, matches and every condition); FitOnly (fit
// and disqualified; matches and conditions left empty, the conditions no fit rule needs not
// evaluated); ActivityConditions (only the conditions activity rules test, for matching
// activities: the fit rules are not evaluated, fit and matches stay empty, other conditions 0).
enum class LeadRead { Everything, FitOnly, ActivityConditions };

// Evaluates the fit rules on one deformed lead row; returns the key text in key_out.
FitFacts match_lead_row(const CompiledModel& cm, const RowLayout& layout, const Datum* values, const bool* nulls,
                        std::string& key_out, LeadRead what = LeadRead::Everything);

// Moves a builder's summaries into out, merged with those out already holds for the same lead.
void move_summaries(SummaryBuilder& builder, std::map<std::string, Summary>& out);

// Builds summaries from the activity table (every lead, or only the given keys). Needs SPI.
// When activity rules read the lead, facts holds (or, when null, this reads) the leads' rows.
void collect_activities(const CompiledModel& cm, const std::vector<std::string>* keys,
                        std::map<std::string, Summary>& out, const LeadFactsMap* facts = nullptr);
// The activity types of the given rules (rules the model no longer has have none).
std::set<std::string> rule_types(const Model& model, const std::set<std::int64_t>& rules);
// The occurrences of some activity rules only, from the rows of their activity types (through
// an index on the type column when there is one; of the given leads only when keys is given);
// leads_seen, when given, gets every lead with a row of those types. Needs SPI.
void collect_rule_occurrences(const CompiledModel& cm, const std::set<std::int64_t>& rules,
                              std::map<std::string, Summary>& out,
                              std::unordered_set<std::string>* leads_seen = nullptr,
                              const std::vector<std::string>* keys = nullptr);
// Fit facts of the leads that exist in the leads table (every lead, or the given keys). Needs SPI.
void collect_fits(const CompiledModel& cm, const std::vector<std::string>* keys,
                  std::map<std::string, FitFacts>& out, LeadRead what = LeadRead::Everything);
// The same handed to on_lead as each lead is read (key, facts; both may be moved from).
using FitSink = std::function<void(std::string& key, FitFacts& facts)>;
void collect_fits(const CompiledModel& cm, const std::vector<std::string>* keys, const FitSink& on_lead,
                  LeadRead what = LeadRead::Everything);
// The same for a few keys through primary-key lookups (lead_direct.cpp); false, with nothing
// added, when some table of the lead row cannot be read that way.
bool collect_fits_directly(const CompiledModel& cm, const std::vector<std::string>& keys, const FitSink& on_lead,
                           LeadRead what);

}  // namespace leadscore::pg
