// A model as a backend uses it: the core's rules, where it is tracked, its conditions compiled
// against the tracked tables' column types, and what the state store resolved once.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/engine.hpp"
#include "pg/datum.hpp"

extern "C" {
#include "executor/spi.h"
}

namespace leadscore::pg {

// A row of leadscore.tracking, with what it refers to resolved.
struct TrackingInfo {
    std::string model;
    Oid activities = InvalidOid;
    std::string lead_column, type_column, time_column;
    Oid leads = InvalidOid;
    std::string lead_key;
    std::string state_table;   // unqualified, in schema leadscore
    Oid key_type = InvalidOid;  // type of the lead key
    Oid time_type = InvalidOid;
    std::string activities_name, leads_name;  // qualified, quoted
    std::string key_type_name;                // format_type of key_type
};

// One rule's condition compiled for one row type.
struct CompiledCondition {
    std::int64_t rule_id = 0;
    int column = -1;           // index into Matcher::columns
    Op op = Op::Eq;
    Oid collation = InvalidOid;
    FmgrInfo fn{};             // the operator's function (or >= for between)
    FmgrInfo fn_upper{};       // <= for between
    std::vector<Datum> operands;
    std::vector<std::string> list_values;  // sorted; lower-cased for domain in list
    FmgrInfo out_fn{};                     // column output function, for list operators
};

struct ColumnBinding {
    std::string name;
    Oid type = InvalidOid;
    Oid collation = InvalidOid;
};

// The conditions of one rule family compiled against one row type.
class Matcher {
public:
    std::vector<ColumnBinding> columns;
    std::unordered_map<std::int64_t, CompiledCondition> conditions;
    // Plain PostgreSQL code: call only inside pg_guard.
    static bool evaluate(const CompiledCondition& c, Datum value, bool isnull);
    int column_index(const std::string& name) const;
};

// Where to find the tracked columns in some tuple descriptor (1-based attnos).
struct RowLayout {
    TextOutput key_text, type_text;
    int lead = 0, type = 0, time = 0;
    Oid time_type = InvalidOid;
    Oid type_type = InvalidOid;  // type of the activity-type column
    Oid key_type = InvalidOid;   // type of the lead key column
    std::vector<int> columns;  // attno of each Matcher column
};

// How the direct path turns key text into key Datums and compares keys in the state index.
struct StateKeyInfo {
    bool ready = false;
    FmgrInfo input{};
    Oid ioparam = InvalidOid;
    std::int16_t typlen = 0;
    bool byval = false;
    char align = 'i';
    Oid eq_proc = InvalidOid;
};

struct CompiledModel {
    CompiledModel() = default;
    // Frees the kept plans and the memory context; the model cache destroys models only at
    // its next use, never inside an invalidation callback.
    ~CompiledModel();
    CompiledModel(const CompiledModel&) = delete;
    CompiledModel& operator=(const CompiledModel&) = delete;

    std::unique_ptr<Model> model;
    std::optional<TrackingInfo> tracking;
    std::unique_ptr<Matcher> activity_matcher;  // against the activity table (tracked only)
    std::unique_ptr<Matcher> fit_matcher;       // against the leads table (tracked with leads only)
    MemoryContext context = nullptr;            // owns operands and FmgrInfo data
    // Prepared generic plans of this model's state statements, by SQL text.
    std::map<std::string, SPIPlanPtr> plans;
    // The state table, resolved on first use (a change to it drops the cached model).
    Oid state_relid = InvalidOid;
    // "leadscore.<state table>", quoted; built on first use.
    std::string state_table_sql;
    StateKeyInfo state_key;
    // The state table's attribute number of each StateColumn, resolved on first use.
    std::vector<std::int16_t> state_attnums;
    // Matchers for other row types (the aggregate over views and subqueries).
    std::map<std::pair<Oid, std::int32_t>, std::unique_ptr<Matcher>> row_matchers;
};

// A kept, generic plan for a statement of this model (prepared on first use). Needs SPI.
SPIPlanPtr cached_plan(CompiledModel& cm, const std::string& sql, const std::vector<Oid>& types);

}  // namespace leadscore::pg
