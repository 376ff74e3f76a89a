// The lead row: a lead's own columns and the columns of its related rows ("relation.column").
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "pg/conditions.hpp"

namespace leadscore::pg {

// The relation of that name; null when the model has none.
const RelationInfo* find_relation(const std::vector<RelationInfo>& relations, const std::string& name);

// The lead row a model's lead-side conditions read: the given columns of the leads table and
// "relation.column" columns of related tables, with their types. Throws naming the rule of each
// source (or the label of an extra column) when a column or relation is unknown.
TupleDesc lead_row_desc(const TrackingInfo& tracking, const std::vector<RelationInfo>& relations,
                        const std::vector<ConditionSource>& sources,
                        const std::vector<std::pair<std::string, std::string>>& extra_columns);

// SELECT list and FROM clause that read the lead row (key first, as "key") for the lead matcher's
// columns (those marked in columns, when given), joining the related tables they need; the
// caller adds WHERE on l.<lead key>.
std::string lead_row_query(const CompiledModel& cm, const std::vector<bool>* columns = nullptr);

// Every lead whose row passes some of the given fit rules (enabled rules of the model, without
// multiply_by): bit i set when it passes rules[i] (at most 64). Reads only the columns those
// rules test and evaluates only their conditions. Needs SPI.
using FitRuleMatchSink = std::function<void(std::string& key, std::uint64_t passed)>;
void collect_fit_rule_matches(const CompiledModel& cm, const std::vector<std::int64_t>& rules,
                              const FitRuleMatchSink& on_lead);

}  // namespace leadscore::pg
