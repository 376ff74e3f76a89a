// Loading a model's rules from the rule tables, compiling their conditions against the
// tracked tables' column types, and the per-backend cache of compiled models.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/engine.hpp"
#include "pg/pg.hpp"

extern "C" {
#include "access/tupdesc.h"
#include "executor/spi.h"
}

namespace leadscore::pg {

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

// Text form of the values of one type; integers and strings skip the output function.
class TextOutput {
public:
    explicit TextOutput(Oid type = InvalidOid) : type_(type) {}
    // Plain PostgreSQL code: call inside pg_guard.
    void write(Datum d, std::string& out) const;

private:
    Oid type_;
    mutable bool ready_ = false;
    mutable FmgrInfo fn_{};
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

// How the fast path turns key text into key Datums and compares keys in the state index.
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
    ~CompiledModel();
    CompiledModel(const CompiledModel&) = delete;
    CompiledModel& operator=(const CompiledModel&) = delete;

    std::unique_ptr<Model> model;
    std::optional<TrackingInfo> tracking;
    std::unique_ptr<Matcher> activity_matcher;  // against the activity table (tracked only)
    std::unique_ptr<Matcher> fit_matcher;       // against the leads table (tracked with leads only)
    MemoryContext context = nullptr;            // owns operands and FmgrInfo data
    bool has_list_rules = false;
    std::vector<std::string> lists_used;
    // Prepared generic plans of this model's state statements, by SQL text.
    std::map<std::string, SPIPlanPtr> plans;
    // The state table, resolved on first use (a change to it drops the cached model).
    Oid state_relid = InvalidOid;
    // "leadscore.<state table>", quoted; built on first use.
    std::string state_table_sql;
    StateKeyInfo state_key;
    // The state table's column numbers (in StateColumns order), resolved on first use.
    std::vector<std::int16_t> state_attnums;
    // Matchers for other row types (the aggregate over views and subqueries).
    std::map<std::pair<Oid, std::int32_t>, std::unique_ptr<Matcher>> row_matchers;
};

// The compiled model, from the cache or freshly loaded. Throws when the model does not
// exist, or when require_tracked and it is not tracked.
std::shared_ptr<CompiledModel> get_model(const std::string& name, bool require_tracked);
// A kept, generic plan for a statement of this model (prepared on first use). Needs SPI.
SPIPlanPtr cached_plan(CompiledModel& cm, const std::string& sql, const std::vector<Oid>& types);
// A model (possibly an untracked draft) scored on the tables another model tracks.
std::shared_ptr<CompiledModel> get_model_on_tables(const std::string& name, const std::string& tables_from);
// Names of all tracked models.
std::vector<std::string> tracked_models();
void invalidate_cache();
// Drops the cached models whenever this relation changes.
void watch_relation(Oid relid);
// Changes whenever cached rules may be stale (rule edits committed elsewhere, DDL, aborts).
std::uint64_t cache_generation();
void register_cache_callbacks();

// Compiles an activity-rule condition against an arbitrary row type (for the aggregate).
const Matcher& matcher_for_rowtype(CompiledModel& cm, TupleDesc desc, Oid type_id, std::int32_t typmod);

// Compiles one condition; label names the rule in errors (e.g. fit_rule "CEO" (id 3)).
CompiledCondition compile_condition(const std::string& label, const std::string& relation_name,
                                    TupleDesc desc, const ConditionSpec& spec, Matcher& matcher,
                                    MemoryContext context);

// Resolves the tracked columns in a tuple descriptor; throws if one is missing.
RowLayout activity_layout(const CompiledModel& cm, TupleDesc desc, const Matcher& matcher, bool need_lead = true);
RowLayout lead_layout(const CompiledModel& cm, TupleDesc desc);

// Interval Datum to the core's interval.
leadscore::Interval to_core_interval(Datum d);
// Time column value to the core's timestamp (timestamptz, timestamp as UTC, date at midnight UTC).
Timestamp to_core_time(Datum d, Oid type);
bool is_supported_time_type(Oid type);

std::string relation_display_name(Oid relid);
// A copy of a relation's tuple descriptor (in the current memory context).
TupleDesc relation_desc_copy(Oid relid);
// Text form of the lead key via the type's output function (call inside pg_guard).
char* key_to_cstring(Datum d, Oid type);

}  // namespace leadscore::pg
