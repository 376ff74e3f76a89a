// Reading a model from the rule tables (leadscore.model, activity_rule, fit_rule, stage,
// list_entry, tracking) into the core's rule model, and compiling it for its tracked tables.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "pg/compiled_model.hpp"

namespace leadscore::pg {

// Loads a model's rules and compiles them against the tables model tables_from tracks
// (usually the model itself). Needs SPI; throws naming the rule on a bad rule.
std::unique_ptr<CompiledModel> load_model(const std::string& name, const std::string& tables_from);

// The same from a model's copy in leadscore.cluster_model (tables: its JSON), as a Citus node
// reads a distributed model. Needs SPI.
std::unique_ptr<CompiledModel> load_published_model(const std::string& name, const std::string& tables);
// What the loader reads for a rule table: the table, or the copy's rows while a copy loads.
std::string rule_source(const char* table);

// Where a model is tracked (nullopt: it is not). Needs SPI.
std::optional<TrackingInfo> load_tracking(const std::string& model);
// A model's relations (leadscore.relation), resolved; none before the SQL has the table. Needs SPI.
std::vector<RelationInfo> load_relations(const std::string& model);

// The values of a named list, sorted and unique; lower-cased when lower. Needs SPI.
std::vector<std::string> load_list(const std::string& list, bool lower);

// Whether a rule table of the installed SQL version has a column (a newer library may run on
// an older SQL version until ALTER EXTENSION UPDATE).
bool rule_table_has_column(const char* table, const char* column);

// How rules are named in errors: table "name" (id N).
std::string rule_label(const char* table, const std::string& name, std::int64_t id);

}  // namespace leadscore::pg
