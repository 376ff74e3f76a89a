// A model as a backend uses it: the core's rules, where it is tracked, its conditions compiled
// against the tracked tables' column types, and what the state store resolved once.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
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
    std::string tables_from;  // the tracked model whose tables these are (a draft scored on them)
    Oid activities = InvalidOid;
    std::string lead_column, type_column, time_column;
    Oid leads = InvalidOid;
    std::string lead_key;
    std::string state_table;   // unqualified, in schema leadscore
    Oid key_type = InvalidOid;  // type of the lead key
    Oid time_type = InvalidOid;
    std::string activities_name, leads_name;  // qualified, quoted
    std::string key_type_name;                // format_type of key_type
    // Citus: the tables are distributed by the lead key, and so are the state and history.
    bool distributed = false;
    // A live trigger's model on a Citus node: the names above are that node's co-located shards.
    bool on_shard = false;
    Oid state_shell = InvalidOid;  // on a shard: the distributed state table on this node
    std::string history_table;     // qualified, quoted; empty: leadscore.stage_history
    // The stored summaries hold disabled rules' occurrences (built by track() or rescore() of
    // a version that keeps them).
    bool disabled_rules_matched = false;
};

// A relation of the model (leadscore.relation), resolved.
struct RelationInfo {
    std::string name;
    std::string lead_column;
    Oid target = InvalidOid;
    std::string target_name;  // qualified, quoted
    std::string target_key;
};

// One condition compiled for one row type.
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

// Conditions compiled against one row type, in the order they were given.
class Matcher {
public:
    std::vector<ColumnBinding> columns;
    std::vector<CompiledCondition> conditions;
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

// Where a condition of a rule is evaluated: on the activity row, or on the lead row (the lead's
// columns and its related rows), and its index in that side's Matcher.
struct ConditionRef {
    bool lead_side = false;
    int index = -1;
};

// A rule's conditions as compiled: its inline condition, its condition rows (in the core's
// (grp, id) order), and the column whose value multiplies its points.
struct RuleRefs {
    std::string label;
    std::optional<ConditionRef> inline_condition;
    std::vector<ConditionRef> rows;
    bool reads_lead = false;   // some condition is on the lead row (activity rules)
    int multiply_column = -1;  // activity rules: activity matcher column; fit rules: lead matcher column
    Oid multiply_type = InvalidOid;
    // The rule's points as a numeric Datum (in the model's context): a multiply_by rule's
    // occurrence is worth round(points x value, 6), computed in numeric.
    Datum points_numeric = 0;
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
    // Against the lead row: leads-table columns by name, related columns as "relation.column".
    std::unique_ptr<Matcher> lead_matcher;
    std::vector<RelationInfo> relations;
    std::unordered_map<std::int64_t, RuleRefs> activity_refs;
    // The same by the rule's position in model->activity_rules() (null: no condition, no value).
    std::vector<const RuleRefs*> activity_refs_at;
    std::unordered_map<std::int64_t, RuleRefs> fit_refs;
    // Whether some activity rule tests the lead or a related row: matching an activity then
    // needs its lead's row.
    bool activity_reads_lead = false;
    // Whether an activity of this type is matched by a rule that reads the lead.
    bool type_reads_lead(const std::string& type) const { return lead_reading_types.count(type) > 0; }
    std::unordered_set<std::string> lead_reading_types;
    // The lead matcher's conditions that activity rules test, ascending: all that matching an
    // activity needs of its lead's row.
    std::vector<int> activity_lead_conditions;
    // Results of the lead matcher's conditions for a lead without a row (every column NULL).
    std::vector<char> absent_lead_conditions;
    // Columns of the leads table whose change can change a score (key excluded).
    std::vector<std::string> lead_table_columns;
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
