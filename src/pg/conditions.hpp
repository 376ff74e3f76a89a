// Compiling rule conditions against a row type (PostgreSQL's own operators, converted
// operands, lists) and evaluating them on deformed rows.
#pragma once

#include <string>
#include <vector>

#include "pg/compiled_model.hpp"

extern "C" {
#include "access/tupdesc.h"
}

namespace leadscore::pg {

// One condition to compile: its rule, how errors name the rule, and what it tests.
struct ConditionSource {
    std::int64_t rule_id = 0;
    std::string label;  // e.g. fit_rule "CEO" (id 3)
    const ConditionSpec* spec = nullptr;
};

// The conditions of a model's activity rules (those that have one) and of its fit rules.
// Every kind of condition a rule can carry is listed here, so a new kind is added once.
std::vector<ConditionSource> activity_conditions(const Model& model);
std::vector<ConditionSource> fit_conditions(const Model& model);

// Compiles conditions against one row type: a tracked table, or the rows an aggregate
// gets. Operands and function data live in context. Throws naming rule, column and problem.
std::unique_ptr<Matcher> compile_matcher(const std::vector<ConditionSource>& sources,
                                         const std::string& relation_name, TupleDesc desc, MemoryContext context);

// The model's activity conditions compiled for another row type (cached per row type).
const Matcher& matcher_for_rowtype(CompiledModel& cm, TupleDesc desc, Oid type_id, std::int32_t typmod);

}  // namespace leadscore::pg
