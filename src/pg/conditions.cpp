// Compiling rule conditions against a row type and evaluating them: the operator is the SQL
// operator of that name for the column's type (oper()), so collations, LIKE escapes, regular
// expressions and numeric or timestamp comparison mean what they mean in SQL.
#include <algorithm>

#include "pg/conditions.hpp"
#include "pg/relations.hpp"
#include "pg/rule_loading.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "access/htup_details.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_type.h"
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
    const int attno = find_attribute(desc, spec.attribute);
    if (attno == 0)
        raise(sqlstate::kUndefinedColumn,
              label + ": column \"" + spec.attribute + "\" does not exist in table " + relation_name, std::string(),
              "The attribute must name a column of the tracked table.");
    Form_pg_attribute att = TupleDescAttr(desc, attno - 1);
    const Oid coltype = att->atttypid;
    c.collation = att->attcollation;
    int idx = matcher.column_index(spec.attribute);
    if (idx < 0) {
        matcher.columns.push_back(ColumnBinding{spec.attribute, coltype, att->attcollation});
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

std::vector<ConditionSource> activity_conditions(const Model& model) {
    std::vector<ConditionSource> out;
    for (const ActivityRuleSpec& r : model.activity_rules())
        if (!r.condition.attribute.empty())
            out.push_back(ConditionSource{r.id, rule_label("activity_rule", r.name, r.id), &r.condition});
    return out;
}

std::vector<ConditionSource> fit_conditions(const Model& model) {
    std::vector<ConditionSource> out;
    for (const FitRuleSpec& r : model.fit_rules())
        out.push_back(ConditionSource{r.id, rule_label("fit_rule", r.name, r.id), &r.condition});
    return out;
}

std::unique_ptr<Matcher> compile_matcher(const std::vector<ConditionSource>& sources,
                                         const std::string& relation_name, TupleDesc desc, MemoryContext context) {
    auto matcher = std::make_unique<Matcher>();
    for (const ConditionSource& source : sources)
        matcher->conditions.emplace(source.rule_id, compile_condition(source, relation_name, desc, *matcher, context));
    return matcher;
}

const Matcher& matcher_for_rowtype(CompiledModel& cm, TupleDesc desc, Oid type_id, std::int32_t typmod) {
    const auto cache_key = std::make_pair(type_id, typmod);
    auto it = cm.row_matchers.find(cache_key);
    if (it != cm.row_matchers.end()) return *it->second;
    std::unique_ptr<Matcher> m;
    {
        SpiConnection spi;
        m = compile_matcher(activity_conditions(*cm.model), "the aggregated rows", desc, cm.context);
    }
    auto& slot = cm.row_matchers[cache_key];
    slot = std::move(m);
    return *slot;
}

}  // namespace leadscore::pg
