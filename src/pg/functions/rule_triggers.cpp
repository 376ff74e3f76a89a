// Rule-table triggers: validate_rule() rejects a bad rule when it is written, naming the rule,
// the column and the problem; rules_changed() drops every session's cached rules and rescores
// the tracked models a change affects, in the same transaction.
#include <set>

#include "pg/args.hpp"
#include "pg/conditions.hpp"
#include "pg/model_cache.hpp"
#include "pg/recompute.hpp"
#include "pg/relations.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "catalog/pg_collation.h"
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

void validate_rule_row(const std::string& table, const RowReader& row) {
    auto model = row.text("model");
    auto name = row.text("name").value_or("");
    auto id = row.text("id").value_or("?");
    const std::string label = "\"" + name + "\" (id " + id + ")";
    const std::string full_label = table + " " + label;
    if (!model) raise(sqlstate::kInvalidParameterValue, full_label + ": column \"model\" must not be NULL");
    if (spi_exec("SELECT 1 FROM leadscore.model WHERE name = $1", {{TEXTOID, *model}}, true) == 0)
        raise(sqlstate::kUndefinedObject, full_label + ": model \"" + *model + "\" does not exist",
              std::string(), "Insert it into leadscore.model first.");
    RawRuleFields raw;
    raw.table = table;
    raw.rule_label = label;
    raw.attribute = row.text("attribute");
    raw.op = row.text("op");
    raw.values = row.text_array("value");
    raw.points_text = row.text("points");
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
    if (!raw.attribute || raw.attribute->empty()) return;
    ConditionSpec spec;
    spec.attribute = *raw.attribute;
    spec.op = parse_op(*raw.op);
    spec.values = raw.values.value_or(std::vector<std::optional<std::string>>{});

    // Like a function body's references, a list named by a rule is not checked while a dump
    // is restored (check_function_bodies = off): pg_restore loads the rules before the lists.
    if (op_uses_list(*spec.op) && check_function_bodies) {
        if (spi_exec("SELECT 1 FROM leadscore.list_entry WHERE list = $1 LIMIT 1", {{TEXTOID, *spec.values.at(0)}},
                     true) == 0)
            raise(sqlstate::kUndefinedObject,
                  full_label + ": column \"value\" names unknown list \"" + *spec.values.at(0) + "\"", std::string(),
                  "Add entries to leadscore.list_entry first.");
    }
    if (*spec.op == Op::Regex || *spec.op == Op::RegexI)
        check_regex_syntax(full_label, spec.attribute, *spec.op, *spec.values.at(0));

    // When the model is tracked, the condition must compile against the tracked table.
    if (spi_exec("SELECT activities::oid, leads::oid FROM leadscore.tracking WHERE model = $1", {{TEXTOID, *model}},
                 true) == 0)
        return;
    const Oid rel = table == "fit_rule" ? DatumGetObjectId(spi_datum(0, 2).value_or(ObjectIdGetDatum(InvalidOid)))
                                        : DatumGetObjectId(*spi_datum(0, 1));
    if (!OidIsValid(rel))
        raise(sqlstate::kObjectNotInPrerequisiteState,
              full_label + ": model \"" + *model + "\" tracks no leads table, so fit rules cannot apply",
              std::string(), "Track the model with the leads and lead_key arguments.");
    const std::string relname = relation_display_name(rel);
    MemoryContext scratch = nullptr;
    pg_guard([&] {
        scratch = AllocSetContextCreate(CurrentMemoryContext, "leadscore validation", ALLOCSET_SMALL_SIZES);
    });
    TupleDesc desc = relation_desc_copy(rel);
    compile_matcher({ConditionSource{0, full_label, &spec}}, relname, desc, scratch);
    pg_guard([&] { MemoryContextDelete(scratch); });
}

}  // namespace

LEADSCORE_FUNCTION(leadscore_validate_rule) {
    TriggerData* trig = trigger_arg(fcinfo, "leadscore.validate_rule()");
    HeapTuple tuple = TRIGGER_FIRED_BY_UPDATE(trig->tg_event) ? trig->tg_newtuple : trig->tg_trigtuple;
    const std::string table = RelationGetRelationName(trig->tg_relation);
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
                char* s = TextDatumGetCString(d);
                out.insert(s);
                pfree(s);
            }
        }
        ExecDropSingleTupleTableSlot(slot);
    });
}

}  // namespace

LEADSCORE_FUNCTION(leadscore_rules_changed) {
    TriggerData* trig = trigger_arg(fcinfo, "leadscore.rules_changed()");
    const std::string table = RelationGetRelationName(trig->tg_relation);
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
        } else {
            const char* column = table == "model" ? "name" : "model";
            collect_column(trig->tg_oldtable, desc, column, affected);
            collect_column(trig->tg_newtable, desc, column, affected);
        }
    }
    std::vector<std::string> tracked = tracked_models();
    for (const std::string& m : tracked) {
        if (!everything && !affected.count(m)) continue;
        rescore_model(m, transaction_now(), true, nullptr);
    }
    return PointerGetDatum(nullptr);
}

