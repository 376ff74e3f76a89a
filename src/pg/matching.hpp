// Matching raw rows against a model's rules: where the tracked columns are in a row, which
// activity rules a row matches, a lead row's fit, and scans of the tracked tables.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "pg/compiled_model.hpp"

extern "C" {
#include "access/tupdesc.h"
}

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

// Resolves the tracked columns in a tuple descriptor; throws if one is missing.
RowLayout activity_layout(const CompiledModel& cm, TupleDesc desc, const Matcher& matcher, bool need_lead = true);
RowLayout lead_layout(const CompiledModel& cm, TupleDesc desc);

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

}  // namespace leadscore::pg
