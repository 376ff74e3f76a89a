// Compiling rule conditions against a row type (PostgreSQL's own operators, converted
// operands, lists) and evaluating them on deformed rows.
#pragma once

#include <string>
#include <unordered_map>
#include <vector>

#include "pg/compiled_model.hpp"

extern "C" {
#include "access/tupdesc.h"
}

namespace leadscore::pg {

// One condition to compile: its rule, how errors name the rule, what it tests, and the name of
// the column it reads in its row ("title" for lead.title, "account.revenue" as is).
struct ConditionSource {
    std::int64_t rule_id = 0;
    std::string label;  // e.g. fit_rule "CEO" (id 3)
    const ConditionSpec* spec = nullptr;
    std::string column;
};

// Which of a model's conditions are evaluated on activity rows and which on the lead row, and
// what each rule refers to. Every kind of condition a rule can carry is listed here once.
struct ConditionPlan {
    std::vector<ConditionSource> activity_side;
    std::vector<ConditionSource> lead_side;
    std::unordered_map<std::int64_t, RuleRefs> activity_refs;
    std::unordered_map<std::int64_t, RuleRefs> fit_refs;
    // multiply_by columns by rule id, named as in their row.
    std::vector<std::pair<std::int64_t, std::string>> activity_multiply, fit_multiply;
    bool activity_reads_lead = false;
};
// Throws naming the rule and the attribute when an attribute names an unknown relation.
ConditionPlan plan_conditions(const Model& model, const std::vector<RelationInfo>& relations);

// Compiles conditions against one row type: a tracked table, the lead row, or the rows an
// aggregate gets. Operands and function data live in context. Throws naming rule, column and
// problem.
std::unique_ptr<Matcher> compile_matcher(const std::vector<ConditionSource>& sources,
                                         const std::string& relation_name, TupleDesc desc, MemoryContext context);

// Checks one condition, or a multiply_by column (spec null), of a rule being written against
// the tables its model is tracked on. Throws naming label, attribute and problem.
void check_against_tables(const TrackingInfo& tracking, const std::vector<RelationInfo>& relations,
                          bool activity_rule, const std::string& label, const ConditionSpec* spec,
                          const std::string& multiply_by);

// Compiles a tracked model's conditions (activity and lead side) and multiply_by columns.
void compile_model_conditions(CompiledModel& cm);

// The model's activity conditions compiled for another row type (cached per row type).
const Matcher& matcher_for_rowtype(CompiledModel& cm, TupleDesc desc, Oid type_id, std::int32_t typmod);

}  // namespace leadscore::pg
