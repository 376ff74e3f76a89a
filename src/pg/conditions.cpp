// Compiling rule conditions against a row type and evaluating them: the operator is the SQL
// operator of that name for the column's type (oper()), so collations, LIKE escapes, regular
// expressions and numeric or timestamp comparison mean what they mean in SQL.
#include <algorithm>

#include "pg/conditions.hpp"
#include "pg/datum.hpp"
#include "pg/lead_row.hpp"
#include "pg/relations.hpp"
#include "pg/rule_loading.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "access/htup_details.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "nodes/makefuncs.h"
#include "nodes/value.h"
#include "parser/parse_coerce.h"
#include "parser/parse_oper.h"
#include "regex/regex.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
}

namespace leadscore::pg {

namespace {

struct PgValue {
    Datum datum;
    bool isnull;
};

// The core's evaluate_condition calls back into PostgreSQL's functions through these.
struct PgOps {
    const CompiledCondition& c;
    bool is_null(const PgValue& v) const { return v.isnull; }
    bool binary(Op op, const PgValue& lhs, const PgValue& rhs) const {
        FmgrInfo* fn = const_cast<FmgrInfo*>(c.op == Op::Between && op == Op::Le ? &c.fn_upper : &c.fn);
        return DatumGetBool(FunctionCall2Coll(fn, c.collation, lhs.datum, rhs.datum));
    }
    bool in_list(const PgValue& v) const {
        char* s = OutputFunctionCall(const_cast<FmgrInfo*>(&c.out_fn), v.datum);
        const bool found = std::binary_search(c.list_values.begin(), c.list_values.end(), std::string_view(s),
                                              [](std::string_view a, std::string_view b) { return a < b; });
        pfree(s);
        return found;
    }
    bool domain_in_list(const PgValue& v) const {
        char* s = OutputFunctionCall(const_cast<FmgrInfo*>(&c.out_fn), v.datum);
        const bool found = email_domain_in(s, c.list_values);
        pfree(s);
        return found;
    }
};

// The operator's function for the column type, and the type its right operand must have.
Oid lookup_operator(const std::string& where, Op op, const char* opname, Oid coltype, FmgrInfo* fn,
                    MemoryContext context) {
    Oid right = InvalidOid;
    bool found = false;
    const std::optional<std::string> pg_message = pg_error_message([&] {
        Operator tup = oper(nullptr, list_make1(makeString(pstrdup(opname))), coltype, coltype, true, -1);
        if (tup) {
            Form_pg_operator form = (Form_pg_operator)GETSTRUCT(tup);
            if (form->oprresult == BOOLOID && IsBinaryCoercible(coltype, form->oprleft)) {
                right = form->oprright;
                fmgr_info_cxt(form->oprcode, fn, context);
                found = true;
            }
            ReleaseSysCache(tup);
        }
    });
    if (!found)
        raise(sqlstate::kDatatypeMismatch, where + ": operator \"" + op_name(op) + "\" is not defined for this column type",
              pg_message.value_or(std::string()));
    return right;
}

CompiledCondition compile_condition(const ConditionSource& source, const std::string& relation_name, TupleDesc desc,
                                    Matcher& matcher, MemoryContext context) {
    const ConditionSpec& spec = *source.spec;
    const std::string& label = source.label;
    CompiledCondition c;
    c.rule_id = source.rule_id;
    c.op = *spec.op;
    const int attno = find_attribute(desc, source.column);
    if (attno == 0)
        raise(sqlstate::kUndefinedColumn,
              label + ": column \"" + spec.attribute + "\" does not exist in table " + relation_name, std::string(),
              "The attribute must name a column of the tracked table.");
    Form_pg_attribute att = TupleDescAttr(desc, attno - 1);
    const Oid coltype = att->atttypid;
    c.collation = att->attcollation;
    int idx = matcher.column_index(source.column);
    if (idx < 0) {
        matcher.columns.push_back(ColumnBinding{source.column, coltype, att->attcollation});
        idx = static_cast<int>(matcher.columns.size()) - 1;
    }
    c.column = idx;
    const std::string where = label + ": column \"" + spec.attribute + "\" (" + type_name(coltype) + ")";

    if (c.op == Op::IsNull || c.op == Op::IsNotNull) return c;

    if (op_uses_list(c.op)) {
        const std::string& list = *spec.values.at(0);
        c.list_values = load_list(list, c.op == Op::DomainInList);
        if (c.list_values.empty())
            raise(sqlstate::kUndefinedObject, label + ": column \"value\" names unknown list \"" + list + "\"",
                  std::string(), "Add entries to leadscore.list_entry first.");
        pg_guard([&] {
            Oid out_fn;
            bool varlena;
            getTypeOutputInfo(coltype, &out_fn, &varlena);
            fmgr_info_cxt(out_fn, &c.out_fn, context);
        });
        return c;
    }

    const Oid right_type =
        lookup_operator(where, c.op, op_sql_operator(c.op == Op::Between ? Op::Ge : c.op), coltype, &c.fn, context);
    if (c.op == Op::Between) lookup_operator(where, c.op, "<=", coltype, &c.fn_upper, context);

    for (const auto& v : spec.values) {
        Datum d = 0;
        const std::optional<std::string> pg_message = pg_error_message([&] {
            MemoryContext old = MemoryContextSwitchTo(context);
            Oid input_fn, ioparam;
            getTypeInputInfo(right_type, &input_fn, &ioparam);
            d = OidInputFunctionCall(input_fn, const_cast<char*>(v->c_str()), ioparam, -1);
            MemoryContextSwitchTo(old);
        });
        if (pg_message)
            raise(sqlstate::kInvalidTextRepresentation,
                  where + ": value \"" + *v + "\" is not a valid " + type_name(right_type), *pg_message);
        c.operands.push_back(d);
    }

    if (c.op == Op::Regex || c.op == Op::RegexI) {
        const std::optional<std::string> pg_message = pg_error_message([&] {
            text* pattern = cstring_to_text(spec.values.at(0)->c_str());
            int flags = REG_ADVANCED | (c.op == Op::RegexI ? REG_ICASE : 0);
            RE_compile_and_cache(pattern, flags, OidIsValid(c.collation) ? c.collation : DEFAULT_COLLATION_OID);
        });
        if (pg_message)
            raise(sqlstate::kInvalidRegularExpression,
                  where + ": value \"" + *spec.values.at(0) + "\" is not a valid regular expression", *pg_message);
    }
    return c;
}

}  // namespace

int Matcher::column_index(const std::string& name) const {
    for (std::size_t i = 0; i < columns.size(); i++)
        if (columns[i].name == name) return static_cast<int>(i);
    return -1;
}

bool Matcher::evaluate(const CompiledCondition& c, Datum value, bool isnull) {
    PgOps ops{c};
    // Operands are wrapped without allocation per call: the scratch vector keeps its capacity.
    static thread_local std::vector<PgValue> operands;
    operands.clear();
    for (Datum d : c.operands) operands.push_back(PgValue{d, false});
    return evaluate_condition(c.op, PgValue{value, isnull}, operands, ops);
}

namespace {

// Where an attribute is read: activity rules read plain names on the activity row; "lead.x"
// and "relation.x" (and, for fit rules, plain names) on the lead row.
std::pair<bool, std::string> place_attribute(const std::string& attribute, bool activity_rule,
                                             const std::vector<RelationInfo>& relations, const std::string& label) {
    const auto dot = attribute.find('.');
    if (dot == std::string::npos) return {!activity_rule, attribute};
    const std::string prefix = attribute.substr(0, dot);
    if (prefix == "lead") return {true, attribute.substr(dot + 1)};
    if (!find_relation(relations, prefix))
        raise(sqlstate::kUndefinedObject,
              label + ": attribute \"" + attribute + "\" names unknown relation \"" + prefix + "\"", std::string(),
              "Define it in leadscore.relation first, or use lead.column for the lead's own columns.");
    return {true, attribute};
}

}  // namespace

ConditionPlan plan_conditions(const Model& model, const std::vector<RelationInfo>& relations) {
    ConditionPlan plan;
    auto add = [&](bool activity_rule, std::int64_t id, const ConditionSpec& spec, const std::string& where) {
        auto [lead_side, column] = place_attribute(spec.attribute, activity_rule, relations, where);
        std::vector<ConditionSource>& side = lead_side ? plan.lead_side : plan.activity_side;
        side.push_back(ConditionSource{id, where, &spec, column});
        if (activity_rule && lead_side) plan.activity_reads_lead = true;
        return ConditionRef{lead_side, static_cast<int>(side.size()) - 1};
    };
    // A rule's inline condition and condition rows, placed on their sides.
    auto conditions_of = [&](bool activity_rule, std::int64_t id, const std::string& label, const ConditionSpec& inline_spec,
                             const std::vector<ConditionRowSpec>& rows) {
        RuleRefs refs;
        refs.label = label;
        if (!inline_spec.attribute.empty()) refs.inline_condition = add(activity_rule, id, inline_spec, label);
        for (const ConditionRowSpec& c : rows)
            refs.rows.push_back(add(activity_rule, id, c.condition,
                                    label + " condition " + std::to_string(c.id) + " (group " + std::to_string(c.grp) + ")"));
        return refs;
    };
    for (const ActivityRuleSpec& r : model.activity_rules()) {
        if (r.condition.attribute.empty() && r.conditions.empty() && r.multiply_by.empty()) continue;
        RuleRefs refs = conditions_of(true, r.id, rule_label("activity_rule", r.name, r.id), r.condition, r.conditions);
        if (!r.multiply_by.empty()) plan.activity_multiply.emplace_back(r.id, r.multiply_by);
        refs.reads_lead = (refs.inline_condition && refs.inline_condition->lead_side) ||
                          std::any_of(refs.rows.begin(), refs.rows.end(), [](const ConditionRef& c) { return c.lead_side; });
        plan.activity_refs.emplace(r.id, std::move(refs));
    }
    for (const FitRuleSpec& r : model.fit_rules()) {
        RuleRefs refs = conditions_of(false, r.id, rule_label("fit_rule", r.name, r.id), r.condition, r.conditions);
        if (!r.multiply_by.empty())
            plan.fit_multiply.emplace_back(r.id, place_attribute(r.multiply_by, false, relations, refs.label).second);
        plan.fit_refs.emplace(r.id, std::move(refs));
    }
    return plan;
}

std::unique_ptr<Matcher> compile_matcher(const std::vector<ConditionSource>& sources,
                                         const std::string& relation_name, TupleDesc desc, MemoryContext context) {
    auto matcher = std::make_unique<Matcher>();
    for (const ConditionSource& source : sources)
        matcher->conditions.push_back(compile_condition(source, relation_name, desc, *matcher, context));
    return matcher;
}

namespace {

Datum numeric_in_context(MicroPoints points, MemoryContext context) {
    Datum d = 0;
    pg_guard([&] {
        MemoryContext old = MemoryContextSwitchTo(context);
        d = points_datum(points);
        MemoryContextSwitchTo(old);
    });
    return d;
}

bool is_numeric_type(Oid type) {
    Oid base = type;
    pg_guard([&] { base = getBaseType(type); });
    return base == INT2OID || base == INT4OID || base == INT8OID || base == NUMERICOID || base == FLOAT4OID ||
           base == FLOAT8OID;
}

// Adds a multiply_by column to a matcher's columns; it must be numeric.
int bind_multiply_column(Matcher& m, TupleDesc desc, const std::string& column, const std::string& label,
                         const std::string& attribute, const std::string& relation_name, Oid& type_out) {
    const int attno = find_attribute(desc, column);
    if (attno == 0)
        raise(sqlstate::kUndefinedColumn, label + ": column \"multiply_by\" names \"" + attribute +
                                              "\", which does not exist in " + relation_name);
    Form_pg_attribute att = TupleDescAttr(desc, attno - 1);
    if (!is_numeric_type(att->atttypid))
        raise(sqlstate::kDatatypeMismatch, label + ": column \"multiply_by\" names \"" + attribute + "\" of type " +
                                               type_name(att->atttypid) + ", which is not numeric",
              std::string(), "multiply_by needs a smallint, integer, bigint, numeric, real or double precision column.");
    type_out = att->atttypid;
    int idx = m.column_index(column);
    if (idx < 0) {
        m.columns.push_back(ColumnBinding{column, att->atttypid, att->attcollation});
        idx = static_cast<int>(m.columns.size()) - 1;
    }
    return idx;
}

// The activity-side matcher for one row type, with the multiply_by columns bound after the
// condition columns (the same order for every row type, so RuleRefs indexes agree).
std::unique_ptr<Matcher> build_activity_matcher(const ConditionPlan& plan, const Model& model,
                                                const std::string& relation_name, TupleDesc desc, MemoryContext context,
                                                std::unordered_map<std::int64_t, RuleRefs>* refs) {
    auto m = compile_matcher(plan.activity_side, relation_name, desc, context);
    for (const auto& [id, column] : plan.activity_multiply) {
        const ActivityRuleSpec* r = model.activity_rule(id);
        Oid type = InvalidOid;
        const std::string label = rule_label("activity_rule", r->name, r->id);
        const auto dot = column.find('.');
        if (dot != std::string::npos)
            raise(sqlstate::kInvalidParameterValue, label + ": column \"multiply_by\" must name a column of the activity row, not \"" + column + "\"");
        const int idx = bind_multiply_column(*m, desc, column, label, column, relation_name, type);
        if (refs) {
            RuleRefs& rr = refs->at(id);
            rr.multiply_column = idx;
            rr.multiply_type = type;
            rr.points_numeric = numeric_in_context(r->points, context);
        }
    }
    return m;
}

}  // namespace

void check_against_tables(const TrackingInfo& tracking, const std::vector<RelationInfo>& relations,
                          bool activity_rule, const std::string& label, const ConditionSpec* spec,
                          const std::string& multiply_by) {
    const std::string& attribute = spec ? spec->attribute : multiply_by;
    auto [lead_side, column] = place_attribute(attribute, activity_rule && spec, relations, label);
    if (!spec && activity_rule) lead_side = attribute.find('.') != std::string::npos;
    MemoryContext scratch = nullptr;
    pg_guard([&] { scratch = AllocSetContextCreate(CurrentMemoryContext, "leadscore check", ALLOCSET_SMALL_SIZES); });
    TupleDesc desc;
    std::string where;
    if (lead_side) {
        if (!spec && activity_rule)
            raise(sqlstate::kInvalidParameterValue,
                  label + ": column \"multiply_by\" must name a column of the activity row, not \"" + attribute + "\"");
        const ConditionSource source{0, label, spec, column};
        std::vector<ConditionSource> sources;
        std::vector<std::pair<std::string, std::string>> extra;
        if (spec)
            sources.push_back(source);
        else
            extra.emplace_back(column, label);
        desc = lead_row_desc(tracking, relations, sources, extra);
        where = "the lead row of " + tracking.leads_name;
    } else {
        desc = relation_desc_copy(tracking.activities);
        where = tracking.activities_name;
    }
    Matcher m;
    if (spec) {
        compile_matcher({ConditionSource{0, label, spec, column}}, where, desc, scratch);
    } else {
        Oid type = InvalidOid;
        bind_multiply_column(m, desc, column, label, attribute, where, type);
    }
    pg_guard([&] { MemoryContextDelete(scratch); });
}

void compile_model_conditions(CompiledModel& cm) {
    const TrackingInfo& t = *cm.tracking;
    ConditionPlan plan = plan_conditions(*cm.model, cm.relations);
    cm.activity_refs = plan.activity_refs;
    cm.fit_refs = plan.fit_refs;
    cm.activity_reads_lead = plan.activity_reads_lead;
    // Asked for every activity row a scan matches: decided once here.
    for (const ActivityRuleSpec& r : cm.model->activity_rules())
        if (auto it = cm.activity_refs.find(r.id); it != cm.activity_refs.end() && it->second.reads_lead)
            cm.lead_reading_types.insert(r.activity_type);
    cm.activity_matcher = build_activity_matcher(plan, *cm.model, t.activities_name, relation_desc_copy(t.activities),
                                                 cm.context, &cm.activity_refs);
    const bool needs_lead = !plan.lead_side.empty() || !plan.fit_multiply.empty() || !cm.model->fit_rules().empty();
    if (needs_lead && !OidIsValid(t.leads))
        raise(sqlstate::kObjectNotInPrerequisiteState,
              "model \"" + t.model + "\" has fit rules or lead conditions but tracks no leads table", std::string(),
              "Track the model with the leads and lead_key arguments.");
    std::vector<std::pair<std::string, std::string>> extra;
    for (const auto& [id, column] : plan.fit_multiply) extra.emplace_back(column, cm.fit_refs.at(id).label);
    if (!OidIsValid(t.leads)) {
        cm.lead_matcher = std::make_unique<Matcher>();
    } else {
        TupleDesc desc = lead_row_desc(t, cm.relations, plan.lead_side, extra);
        cm.lead_matcher = compile_matcher(plan.lead_side, "the lead row of " + t.leads_name, desc, cm.context);
        for (const auto& [id, column] : plan.fit_multiply) {
            RuleRefs& rr = cm.fit_refs.at(id);
            rr.multiply_column = bind_multiply_column(*cm.lead_matcher, desc, column, rr.label,
                                                      cm.model->fit_rule(id)->multiply_by, t.leads_name,
                                                      rr.multiply_type);
            rr.points_numeric = numeric_in_context(cm.model->fit_rule(id)->points, cm.context);
        }
    }
    cm.activity_refs_at.clear();
    for (const ActivityRuleSpec& r : cm.model->activity_rules()) {
        auto it = cm.activity_refs.find(r.id);
        cm.activity_refs_at.push_back(it == cm.activity_refs.end() ? nullptr : &it->second);
    }
    cm.activity_lead_conditions.clear();
    for (const auto& [id, refs] : cm.activity_refs) {
        if (refs.inline_condition && refs.inline_condition->lead_side)
            cm.activity_lead_conditions.push_back(refs.inline_condition->index);
        for (const ConditionRef& ref : refs.rows)
            if (ref.lead_side) cm.activity_lead_conditions.push_back(ref.index);
    }
    std::sort(cm.activity_lead_conditions.begin(), cm.activity_lead_conditions.end());
    cm.activity_lead_conditions.erase(
        std::unique(cm.activity_lead_conditions.begin(), cm.activity_lead_conditions.end()),
        cm.activity_lead_conditions.end());
    cm.absent_lead_conditions.clear();
    pg_guard([&] {
        for (const CompiledCondition& c : cm.lead_matcher->conditions)
            cm.absent_lead_conditions.push_back(Matcher::evaluate(c, 0, true) ? 1 : 0);
    });
    // Leads-table columns whose change can change a score: plain columns and relation keys.
    cm.lead_table_columns.clear();
    for (const ColumnBinding& c : cm.lead_matcher->columns)
        if (c.name.find('.') == std::string::npos) cm.lead_table_columns.push_back(c.name);
    for (const RelationInfo& r : cm.relations)
        if (std::find(cm.lead_table_columns.begin(), cm.lead_table_columns.end(), r.lead_column) ==
            cm.lead_table_columns.end())
            cm.lead_table_columns.push_back(r.lead_column);
}

const Matcher& matcher_for_rowtype(CompiledModel& cm, TupleDesc desc, Oid type_id, std::int32_t typmod) {
    const auto cache_key = std::make_pair(type_id, typmod);
    auto it = cm.row_matchers.find(cache_key);
    if (it != cm.row_matchers.end()) return *it->second;
    std::unique_ptr<Matcher> m;
    {
        SpiConnection spi;
        ConditionPlan plan = plan_conditions(*cm.model, cm.relations);
        if (plan.activity_reads_lead && !cm.tracking)
            raise(sqlstate::kObjectNotInPrerequisiteState,
                  "model \"" + cm.model->spec().name +
                      "\" has conditions on the lead or related rows: the aggregate reads them from the tracked "
                      "tables, and the model is not tracked",
                  std::string(), "Track the model first.");
        m = build_activity_matcher(plan, *cm.model, "the aggregated rows", desc, cm.context, nullptr);
    }
    auto& slot = cm.row_matchers[cache_key];
    slot = std::move(m);
    return *slot;
}

}  // namespace leadscore::pg
