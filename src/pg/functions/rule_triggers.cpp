// Rule-table triggers: validate_rule() rejects a bad rule when it is written, naming the rule,
// the column and the problem; rules_changed() drops every session's cached rules and rescores
// the tracked models a change affects, in the same transaction.
#include <set>

#include "pg/args.hpp"
#include "pg/citus.hpp"
#include "pg/conditions.hpp"
#include "pg/model_cache.hpp"
#include "pg/recompute.hpp"
#include "pg/related.hpp"
#include "pg/rule_edits.hpp"
#include "pg/relations.hpp"
#include "pg/rule_loading.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "access/htup_details.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_operator.h"
#include "nodes/makefuncs.h"
#include "nodes/value.h"
#include "parser/parse_oper.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "regex/regex.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/rel.h"
}

using namespace leadscore;
using namespace leadscore::pg;

// Rule validation (BEFORE ROW trigger on the rule tables).

namespace {

struct RowReader {
    HeapTuple tuple;
    TupleDesc desc;
    std::optional<std::string> text(const char* col) const {
        std::optional<std::string> out;
        pg_guard([&] {
            int n = SPI_fnumber(desc, col);
            if (n <= 0) elog(ERROR, "leadscore: column %s missing", col);
            char* v = SPI_getvalue(tuple, desc, n);
            if (v) out.emplace(v);
        });
        return out;
    }
    // A column a newer release added reads as NULL on an older SQL version.
    std::optional<Datum> optional_datum(const char* col) const {
        int n = 0;
        pg_guard([&] { n = SPI_fnumber(desc, col); });
        if (n <= 0) return std::nullopt;
        return datum(col);
    }
    std::optional<Datum> datum(const char* col) const {
        std::optional<Datum> out;
        pg_guard([&] {
            int n = SPI_fnumber(desc, col);
            if (n <= 0) elog(ERROR, "leadscore: column %s missing", col);
            bool isnull;
            Datum d = SPI_getbinval(tuple, desc, n, &isnull);
            if (!isnull) out = d;
        });
        return out;
    }
    std::optional<std::vector<std::optional<std::string>>> text_array(const char* col) const {
        auto d = datum(col);
        if (!d) return std::nullopt;
        return text_array_elements(*d);
    }
};

void check_regex_syntax(const std::string& label, const std::string& attribute, Op op, const std::string& pattern) {
    const std::optional<std::string> message = pg_error_message([&] {
        text* t = cstring_to_text(pattern.c_str());
        RE_compile_and_cache(t, REG_ADVANCED | (op == Op::RegexI ? REG_ICASE : 0), DEFAULT_COLLATION_OID);
    });
    if (message)
        raise(sqlstate::kInvalidRegularExpression,
              label + ": column \"" + attribute + "\": value \"" + pattern + "\" is not a valid regular expression",
              *message);
}

// The condition's own checks that need the catalog (lists, regular expressions), then, when
// the model is tracked, the condition compiled against the tracked tables.
void check_condition(const std::string& model, bool activity_rule, const std::string& full_label,
                     const std::optional<std::string>& attribute, const std::optional<std::string>& op,
                     const std::optional<std::vector<std::optional<std::string>>>& values,
                     const std::optional<std::string>& multiply_by) {
    std::optional<ConditionSpec> spec;
    if (attribute && !attribute->empty()) {
        spec.emplace();
        spec->attribute = *attribute;
        spec->op = parse_op(*op);
        spec->values = values.value_or(std::vector<std::optional<std::string>>{});
        // Like a function body's references, a list named by a rule is not checked while a dump
        // is restored (check_function_bodies = off): pg_restore loads the rules before the lists.
        if (op_uses_list(*spec->op) && check_function_bodies) {
            if (spi_exec("SELECT 1 FROM leadscore.list_entry WHERE list = $1 LIMIT 1",
                         {{TEXTOID, *spec->values.at(0)}}, true) == 0)
                raise(sqlstate::kUndefinedObject,
                      full_label + ": column \"value\" names unknown list \"" + *spec->values.at(0) + "\"",
                      std::string(), "Add entries to leadscore.list_entry first.");
        }
        if (*spec->op == Op::Regex || *spec->op == Op::RegexI)
            check_regex_syntax(full_label, spec->attribute, *spec->op, *spec->values.at(0));
    }
    // While a dump is restored, relations and tracking may come after the rules.
    if (!check_function_bodies) return;
    std::optional<TrackingInfo> tracking = load_tracking(model);
    if (!tracking) return;
    if (!activity_rule && !OidIsValid(tracking->leads))
        raise(sqlstate::kObjectNotInPrerequisiteState,
              full_label + ": model \"" + model + "\" tracks no leads table, so fit rules cannot apply", std::string(),
              "Track the model with the leads and lead_key arguments.");
    const std::vector<RelationInfo> relations = load_relations(model);
    if (spec) check_against_tables(*tracking, relations, activity_rule, full_label, &*spec, std::string());
    if (multiply_by) check_against_tables(*tracking, relations, activity_rule, full_label, nullptr, *multiply_by);
}

std::optional<std::string> require_model(const std::string& full_label, const std::optional<std::string>& model) {
    if (!model) raise(sqlstate::kInvalidParameterValue, full_label + ": column \"model\" must not be NULL");
    if (spi_exec("SELECT 1 FROM leadscore.model WHERE name = $1", {{TEXTOID, *model}}, true) == 0)
        raise(sqlstate::kUndefinedObject, full_label + ": model \"" + *model + "\" does not exist", std::string(),
              "Insert it into leadscore.model first.");
    return model;
}

void validate_rule_row(const std::string& table, const RowReader& row) {
    auto model = row.text("model");
    auto name = row.text("name").value_or("");
    auto id = row.text("id").value_or("?");
    const std::string label = "\"" + name + "\" (id " + id + ")";
    const std::string full_label = table + " " + label;
    require_model(full_label, model);
    RawRuleFields raw;
    raw.table = table;
    raw.rule_label = label;
    raw.attribute = row.text("attribute");
    raw.op = row.text("op");
    raw.values = row.text_array("value");
    raw.points_text = row.text("points");
    if (row.optional_datum("multiply_by")) raw.multiply_by = row.text("multiply_by");
    if (table == "activity_rule") {
        raw.activity_type = row.text("activity_type");
        raw.max_points_text = row.text("max_points");
        if (auto mc = row.datum("max_count")) raw.max_count = DatumGetInt32(*mc);
        if (auto e = row.datum("expires_after")) raw.expires_after = to_core_interval(*e);
        if (auto h = row.datum("half_life")) raw.half_life = to_core_interval(*h);
        if (auto o = row.datum("once")) raw.once = DatumGetBool(*o);
        if (auto mc = row.optional_datum("min_count")) raw.min_count = DatumGetInt32(*mc);
        if (auto w = row.optional_datum("within")) raw.within = to_core_interval(*w);
        if (auto c = row.optional_datum("cooldown")) raw.cooldown = to_core_interval(*c);
        if (auto q = row.optional_datum("quiet_for")) raw.quiet_for = to_core_interval(*q);
    }
    validate_rule_fields(raw);
    check_condition(*model, table == "activity_rule", full_label, raw.attribute, raw.op, raw.values, raw.multiply_by);
}

void validate_condition_row(const std::string& table, const RowReader& row) {
    const bool activity = table == "activity_condition";
    const std::string rule_table = activity ? "activity_rule" : "fit_rule";
    const std::string id = row.text("id").value_or("?");
    const std::string grp = row.text("grp").value_or("?");
    const auto rule_id = row.text("rule_id");
    const std::string own = table + " " + id + " (group " + grp + ")";
    if (!rule_id) raise(sqlstate::kInvalidParameterValue, own + ": column \"rule_id\" must not be NULL");
    if (spi_exec("SELECT model, name FROM leadscore." + rule_table + " WHERE id = $1::bigint", {{TEXTOID, *rule_id}},
                 true) == 0)
        raise(sqlstate::kUndefinedObject, own + ": " + rule_table + " with id " + *rule_id + " does not exist",
              std::string(), "A condition belongs to a rule: insert the rule first.");
    const std::string model = *spi_text(0, 1);
    const std::string rule = rule_table + " \"" + *spi_text(0, 2) + "\" (id " + *rule_id + ")";
    RawRuleFields raw;
    raw.table = rule;
    raw.rule_label = "condition " + id + " (group " + grp + ")";
    // reject() prefixes the table: the rule and the condition name the place together.
    raw.table = rule;
    raw.attribute = row.text("attribute");
    raw.op = row.text("op");
    raw.values = row.text_array("value");
    RawRuleFields checked = raw;
    checked.table = table;
    try {
        validate_rule_fields(checked);
    } catch (const UserError& e) {
        // Name the rule first: activity_rule "x" (id 3) condition 7 (group 1): column ...
        const std::string message = e.what();
        const std::string prefix = table + " " + raw.rule_label;
        const std::string rest = message.rfind(prefix, 0) == 0 ? message.substr(prefix.size()) : ": " + message;
        throw UserError(e.sqlstate(), rule + " " + raw.rule_label + rest, e.detail(), e.hint());
    }
    check_condition(model, activity, rule + " " + raw.rule_label, raw.attribute, raw.op, raw.values, std::nullopt);
}

void validate_relation_row(const RowReader& row) {
    const std::string name = row.text("name").value_or("");
    const std::string full_label = "relation \"" + name + "\"";
    const auto model = require_model(full_label, row.text("model"));
    if (name.empty() || name.find('.') != std::string::npos)
        raise(sqlstate::kInvalidParameterValue, full_label + ": column \"name\" must be a non-empty name without a dot");
    if (name == "lead")
        raise(sqlstate::kInvalidParameterValue, full_label + ": column \"name\" uses the reserved name \"lead\"",
              std::string(), "lead.column already reads the lead's own row.");
    const Oid target = DatumGetObjectId(*row.datum("target"));
    const std::string target_key = row.text("target_key").value_or("");
    const std::string lead_column = row.text("lead_column").value_or("");
    const std::string target_name = relation_display_name(target);
    AttrNumber key_att = InvalidAttrNumber;
    Oid key_type = InvalidOid;
    pg_guard([&] {
        key_att = get_attnum(target, target_key.c_str());
        if (key_att != InvalidAttrNumber) key_type = get_atttype(target, key_att);
    });
    if (key_att == InvalidAttrNumber)
        raise(sqlstate::kUndefinedColumn, full_label + ": column \"target_key\" names \"" + target_key +
                                              "\", which does not exist in " + target_name);
    // Each lead reads one related row: the key must be unique in the target. pg_restore loads
    // data before it builds indexes (check_function_bodies = off): not checked then.
    if (check_function_bodies && spi_exec("SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = $1 AND i.indisunique AND i.indnatts = 1 "
                 "AND i.indkey[0] = $2 AND i.indpred IS NULL AND i.indisvalid",
                 {{OIDOID, std::to_string(target)}, {INT2OID, std::to_string(key_att)}}, true) == 0)
        raise(sqlstate::kInvalidParameterValue,
              full_label + ": column \"target_key\": " + target_name + "." + target_key + " is not unique",
              std::string(), "Use the primary key of the related table, or add a unique index on the column.");
    if (!check_function_bodies) return;
    std::optional<TrackingInfo> tracking = load_tracking(*model);
    if (!tracking) return;
    if (!OidIsValid(tracking->leads))
        raise(sqlstate::kObjectNotInPrerequisiteState,
              full_label + ": model \"" + *model + "\" tracks no leads table, so a relation has nothing to start from",
              std::string(), "Track the model with the leads and lead_key arguments.");
    AttrNumber lead_att = InvalidAttrNumber;
    Oid lead_type = InvalidOid;
    pg_guard([&] {
        lead_att = get_attnum(tracking->leads, lead_column.c_str());
        if (lead_att != InvalidAttrNumber) lead_type = get_atttype(tracking->leads, lead_att);
    });
    if (lead_att == InvalidAttrNumber)
        raise(sqlstate::kUndefinedColumn, full_label + ": column \"lead_column\" names \"" + lead_column +
                                              "\", which does not exist in " + tracking->leads_name);
    bool comparable = false;
    const std::optional<std::string> message = pg_error_message([&] {
        Operator tup = oper(nullptr, list_make1(makeString(pstrdup("="))), lead_type, key_type, true, -1);
        if (tup) {
            comparable = ((Form_pg_operator)GETSTRUCT(tup))->oprresult == BOOLOID;
            ReleaseSysCache(tup);
        }
    });
    if (!comparable)
        raise(sqlstate::kDatatypeMismatch,
              full_label + ": " + tracking->leads_name + "." + lead_column + " (" + type_name(lead_type) +
                  ") cannot be compared with " + target_name + "." + target_key + " (" + type_name(key_type) + ")",
              message.value_or(std::string()));
}

}  // namespace

LEADSCORE_FUNCTION(leadscore_validate_rule) {
    TriggerData* trig = trigger_arg(fcinfo, "leadscore.validate_rule()");
    HeapTuple tuple = TRIGGER_FIRED_BY_UPDATE(trig->tg_event) ? trig->tg_newtuple : trig->tg_trigtuple;
    const std::string table = RelationGetRelationName(trig->tg_relation);
    if (table == "fit_rule") note_fit_rule_rows_written();
    RowReader row{tuple, RelationGetDescr(trig->tg_relation)};
    SpiConnection spi;
    if (table == "model") {
        const std::string name = row.text("name").value_or("");
        const std::string label = "model \"" + name + "\"";
        std::optional<MicroPoints> lo, hi;
        if (auto v = row.text("score_min")) lo = parse_rule_points(label, "score_min", *v);
        if (auto v = row.text("score_max")) hi = parse_rule_points(label, "score_max", *v);
        if (lo && hi && *lo > *hi)
            raise(sqlstate::kInvalidParameterValue, label + ": column \"score_min\" must not exceed score_max");
    } else if (table == "stage") {
        auto model = row.text("model").value_or("");
        if (spi_exec("SELECT 1 FROM leadscore.model WHERE name = $1", {{TEXTOID, model}}, true) == 0)
            raise(sqlstate::kUndefinedObject,
                  "stage \"" + row.text("name").value_or("") + "\": model \"" + model + "\" does not exist");
        validate_stage(model, row.text("name").value_or(""), row.text("min_score"), row.text("min_fit"),
                       row.text("min_engagement"));
    } else if (table == "relation") {
        validate_relation_row(row);
    } else if (table == "fit_condition" || table == "activity_condition") {
        validate_condition_row(table, row);
    } else {
        validate_rule_row(table, row);
    }
    return PointerGetDatum(tuple);
}

// Rule changes (AFTER statement trigger): drop every session's cached rules, rescore affected models.

namespace {

void collect_column(Tuplestorestate* store, TupleDesc desc, const char* column, std::set<std::string>& out) {
    if (!store) return;
    pg_guard([&] {
        int attno = SPI_fnumber(desc, column);
        if (attno <= 0) elog(ERROR, "leadscore: column %s missing", column);
        TupleTableSlot* slot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
        tuplestore_rescan(store);
        while (tuplestore_gettupleslot(store, true, false, slot)) {
            bool isnull;
            Datum d = slot_getattr(slot, attno, &isnull);
            if (!isnull) {
                char* s = key_to_cstring(d, TupleDescAttr(desc, attno - 1)->atttypid);
                out.insert(s);
                pfree(s);
            }
        }
        ExecDropSingleTupleTableSlot(slot);
    });
}

// The nodes of a Citus cluster score a distributed model with their copy of its rules: the
// copy is rewritten in the edit's transaction, before the edit is applied.
void republish(const std::string& model, const std::string& table) {
    if (!get_model(model, true)->tracking->distributed) return;
    if (table == "relation")
        raise(sqlstate::kFeatureNotSupported,
              "leadscore: model \"" + model + "\" is tracked on Citus-distributed tables, where relations are not "
              "supported yet");
    SpiConnection spi;
    citus::publish_model(model);
}

}  // namespace

LEADSCORE_FUNCTION(leadscore_rules_changed) {
    TriggerData* trig = trigger_arg(fcinfo, "leadscore.rules_changed()");
    const std::string table = RelationGetRelationName(trig->tg_relation);
    const bool fits_as_rows_written = !state_written_since_fit_rule_rows();
    note_state_writer();
    // Other sessions drop their cached rules when this transaction commits.
    pg_guard([&] { CacheInvalidateRelcache(trig->tg_relation); });
    invalidate_cache();

    std::set<std::string> affected;
    const bool everything = TRIGGER_FIRED_BY_TRUNCATE(trig->tg_event);
    TupleDesc desc = RelationGetDescr(trig->tg_relation);
    if (!everything) {
        if (table == "list_entry") {
            std::set<std::string> lists;
            collect_column(trig->tg_oldtable, desc, "list", lists);
            collect_column(trig->tg_newtable, desc, "list", lists);
            std::vector<std::optional<std::string>> l(lists.begin(), lists.end());
            SpiConnection spi;
            std::uint64_t n = spi_exec(
                "SELECT DISTINCT model FROM (SELECT model, op, value FROM leadscore.activity_rule UNION ALL "
                "SELECT model, op, value FROM leadscore.fit_rule) r WHERE lower(regexp_replace(op, '\\s+', ' ', 'g')) "
                "IN ('in list', 'domain in list') AND value[1] = ANY($1::text[])",
                {{TEXTOID, text_array_literal(l)}}, true);
            for (std::uint64_t i = 0; i < n; i++) affected.insert(*spi_text(i, 1));
        }
    }
    // Other edits cost what they change (rule_edits.cpp): a plan per model they touch.
    std::map<std::string, EditPlan> plans;
    if (!everything && table != "list_entry") {
        SpiConnection spi;
        plans = plan_rule_edit(table, trig);
        // (Stored fits another trigger of this query rewrote with the new rules: read every fit.)
        if (table == "fit_rule" && !fits_as_rows_written)
            for (auto& [m, plan] : plans) plan.fit_points_only = false;
    }
    std::vector<std::string> tracked = tracked_models();
    for (const std::string& m : tracked) {
        if (everything || affected.count(m)) {
            republish(m, table);
            if (table == "relation") sync_relation_triggers(m);
            rescore_model(m, transaction_now(), true, nullptr);
            continue;
        }
        auto it = plans.find(m);
        if (it == plans.end()) continue;
        republish(m, table);
        if (!it->second.any()) continue;
        if (table == "relation") sync_relation_triggers(m);
        apply_edit_plan(m, it->second, transaction_now());
    }
    return PointerGetDatum(nullptr);
}

