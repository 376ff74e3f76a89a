// SQL-callable functions: scoring from scratch, explanations, maintenance, tracking,
// rule validation and change propagation.
#include <algorithm>
#include <set>

#include "core/decimal.hpp"
#include "core/timecalc.hpp"
#include "pg/scoring.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "utils/guc.h"
#include "access/htup_details.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "funcapi.h"
#include "regex/regex.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
}

using namespace leadscore;
using namespace leadscore::pg;

namespace {

std::string text_arg(FunctionCallInfo fcinfo, int n, const char* what) {
    if (PG_ARGISNULL(n)) raise(sqlstate::kInvalidParameterValue, std::string(what) + " must not be NULL");
    return text_to_string(PG_GETARG_DATUM(n));
}

std::string name_arg(FunctionCallInfo fcinfo, int n) {
    return std::string(NameStr(*PG_GETARG_NAME(n)));
}

// The canonical text form of a lead key given as any type.
std::string canonical_key(FunctionCallInfo fcinfo, int n, Oid key_type) {
    Oid arg_type = get_fn_expr_argtype(fcinfo->flinfo, n);
    std::string out;
    pg_guard([&] {
        char* given = key_to_cstring(PG_GETARG_DATUM(n), arg_type);
        Oid input_fn, ioparam;
        getTypeInputInfo(key_type, &input_fn, &ioparam);
        Datum k = OidInputFunctionCall(input_fn, given, ioparam, -1);
        out = key_to_cstring(k, key_type);
    });
    return out;
}

struct LeadExplanation {
    LeadScore score;
    std::vector<Contribution> contributions;
};

LeadExplanation explain_lead(const CompiledModel& cm, const std::string& key, Timestamp as_of) {
    std::vector<std::string> keys = {key};
    std::map<std::string, Summary> summaries;
    std::map<std::string, FitFacts> fits;
    {
        SpiConnection spi;
        collect_activities(cm, &keys, summaries);
        collect_fits(cm, &keys, fits);
    }
    Summary summary;
    if (auto it = summaries.find(key); it != summaries.end()) summary = std::move(it->second);
    FitFacts fit;
    if (auto it = fits.find(key); it != fits.end()) fit = it->second;
    LeadExplanation out;
    EngagementResult e = compute_engagement(*cm.model, summary, as_of, true);
    out.score = combine_score(*cm.model, fit.fit, fit.disqualified, e);
    FitResult fr = compute_fit(*cm.model, fit.matches);
    out.contributions = fr.contributions;
    out.contributions.insert(out.contributions.end(), e.contributions.begin(), e.contributions.end());
    return out;
}

Timestamp as_of_arg(FunctionCallInfo fcinfo, int n) {
    if (PG_ARGISNULL(n)) return transaction_now();
    return static_cast<Timestamp>(PG_GETARG_TIMESTAMPTZ(n));
}

}  // namespace

LEADSCORE_FUNCTION(leadscore_score) {
    if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2)) PG_RETURN_NULL();
    const std::string model = text_arg(fcinfo, 0, "model");
    std::shared_ptr<CompiledModel> cm = get_model(model, true);
    const std::string key = canonical_key(fcinfo, 1, cm->tracking->key_type);
    LeadExplanation e = explain_lead(*cm, key, as_of_arg(fcinfo, 2));
    return points_to_numeric(e.score.score);
}

LEADSCORE_FUNCTION(leadscore_explain) {
    if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2)) {
        pg_guard([&] { InitMaterializedSRF(fcinfo, 0); });
        return (Datum)0;
    }
    const std::string model = text_arg(fcinfo, 0, "model");
    std::shared_ptr<CompiledModel> cm = get_model(model, true);
    const std::string key = canonical_key(fcinfo, 1, cm->tracking->key_type);
    LeadExplanation e = explain_lead(*cm, key, as_of_arg(fcinfo, 2));
    pg_guard([&] { InitMaterializedSRF(fcinfo, 0); });
    ReturnSetInfo* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
    for (const Contribution& c : e.contributions) {
        Datum values[7];
        bool nulls[7] = {false, false, false, false, false, false, false};
        Datum name = string_to_text(c.rule_name);
        Datum family = string_to_text(c.family == Family::Fit ? "fit" : "engagement");
        Datum points = points_to_numeric(c.points);
        values[0] = Int64GetDatum(c.rule_id);
        values[1] = name;
        values[2] = family;
        values[3] = Int64GetDatum(c.occurrences);
        values[4] = points;
        if (c.next_expiry)
            values[5] = TimestampTzGetDatum(*c.next_expiry);
        else
            nulls[5] = true;
        values[6] = BoolGetDatum(c.disqualifies);
        pg_guard([&] { tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls); });
    }
    return (Datum)0;
}

LEADSCORE_FUNCTION(leadscore_scores_as_of) {
    const std::string model = text_arg(fcinfo, 0, "model");
    const Timestamp as_of = as_of_arg(fcinfo, 1);
    const std::string tables_from = PG_ARGISNULL(2) ? model : text_to_string(PG_GETARG_DATUM(2));
    std::shared_ptr<CompiledModel> cm = get_model_on_tables(model, tables_from);
    std::map<std::string, Summary> summaries;
    std::map<std::string, FitFacts> fits;
    {
        SpiConnection spi;
        collect_activities(*cm, nullptr, summaries);
        collect_fits(*cm, nullptr, fits);
    }
    const bool has_leads = OidIsValid(cm->tracking->leads);
    std::set<std::string> keys;
    for (const auto& [k, v] : fits) keys.insert(k);
    if (!has_leads)
        for (const auto& [k, v] : summaries) keys.insert(k);
    pg_guard([&] { InitMaterializedSRF(fcinfo, 0); });
    ReturnSetInfo* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
    static const Summary kEmpty;
    for (const std::string& key : keys) {
        auto sit = summaries.find(key);
        const Summary& summary = sit == summaries.end() ? kEmpty : sit->second;
        FitFacts fit;
        if (auto f = fits.find(key); f != fits.end()) fit = f->second;
        EngagementResult e = compute_engagement(*cm->model, summary, as_of, false);
        LeadScore ls = combine_score(*cm->model, fit.fit, fit.disqualified, e);
        Datum values[6];
        bool nulls[6] = {false, false, false, false, false, false};
        values[0] = string_to_text(key);
        values[1] = points_to_numeric(ls.score);
        values[2] = points_to_numeric(ls.fit);
        values[3] = points_to_numeric(ls.engagement);
        if (ls.stage)
            values[4] = string_to_text(*ls.stage);
        else
            nulls[4] = true;
        values[5] = BoolGetDatum(ls.disqualified);
        pg_guard([&] { tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls); });
        check_for_interrupts();
    }
    return (Datum)0;
}

LEADSCORE_FUNCTION(leadscore_rescore) {
    std::vector<std::string> models;
    if (PG_ARGISNULL(0))
        models = tracked_models();
    else
        models.push_back(text_to_string(PG_GETARG_DATUM(0)));
    std::int64_t changed = 0;
    for (const auto& m : models) changed += rescore_model(m, transaction_now(), true, nullptr);
    PG_RETURN_INT64(changed);
}

LEADSCORE_FUNCTION(leadscore_refresh) {
    std::vector<std::string> models;
    if (PG_ARGISNULL(0))
        models = tracked_models();
    else
        models.push_back(text_to_string(PG_GETARG_DATUM(0)));
    const Timestamp as_of = as_of_arg(fcinfo, 1);
    std::int64_t changed = 0;
    for (const auto& m : models) changed += refresh_model(m, as_of);
    PG_RETURN_INT64(changed);
}

namespace {

// Fillfactor of a state table while track() fills it: a page's rows take at most 45%, so
// each has room for a new version on its own page. A state row is about 350 bytes.
constexpr int kStateFillFactor = 45;
// Its fillfactor afterwards, for the pages that later rows fill and for pruning.
constexpr int kStatePruneFillFactor = 90;

std::string trigger_prefix(const std::string& state_table) { return "leadscore_" + state_table; }

AttrNumber column_of(Oid rel, const std::string& col, const std::string& relname, const char* argname) {
    AttrNumber att = InvalidAttrNumber;
    pg_guard([&] { att = get_attnum(rel, col.c_str()); });
    if (att == InvalidAttrNumber)
        raise(sqlstate::kUndefinedColumn,
              std::string("leadscore.track: ") + argname + " \"" + col + "\" is not a column of " + relname);
    return att;
}

bool has_leading_index(Oid rel, AttrNumber att) {
    std::uint64_t n = spi_exec("SELECT 1 FROM pg_catalog.pg_index WHERE indrelid = $1 AND indkey[0] = $2",
                               {{OIDOID, std::to_string(rel)}, {INT2OID, std::to_string(att)}}, true);
    return n > 0;
}

void create_triggers(const std::string& prefix, const std::string& table, const std::string& function,
                     const std::string& model) {
    const std::string arg = quote_literal(model);
    const std::string fn = "leadscore." + function + "(" + arg + ")";
    spi_exec("CREATE TRIGGER " + quote_ident(prefix + "_ins") + " AFTER INSERT ON " + table +
                 " REFERENCING NEW TABLE AS leadscore_new FOR EACH STATEMENT EXECUTE FUNCTION " + fn,
             {});
    spi_exec("CREATE TRIGGER " + quote_ident(prefix + "_upd") + " AFTER UPDATE ON " + table +
                 " REFERENCING OLD TABLE AS leadscore_old NEW TABLE AS leadscore_new FOR EACH STATEMENT "
                 "EXECUTE FUNCTION " + fn,
             {});
    spi_exec("CREATE TRIGGER " + quote_ident(prefix + "_del") + " AFTER DELETE ON " + table +
                 " REFERENCING OLD TABLE AS leadscore_old FOR EACH STATEMENT EXECUTE FUNCTION " + fn,
             {});
    spi_exec("CREATE TRIGGER " + quote_ident(prefix + "_trunc") + " AFTER TRUNCATE ON " + table +
                 " FOR EACH STATEMENT EXECUTE FUNCTION " + fn,
             {});
}

void drop_triggers(const std::string& prefix, const std::string& table) {
    for (const char* suffix : {"_ins", "_upd", "_del", "_trunc"})
        spi_exec("DROP TRIGGER IF EXISTS " + quote_ident(prefix + suffix) + " ON " + table, {});
}

// Statement triggers fire only for the table a statement names, so a partitioned table's
// partitions get the same triggers: writes aimed directly at a partition are scored too.
std::vector<std::string> partitions_of(Oid rel) {
    std::uint64_t n = spi_exec("SELECT relid::regclass::text FROM pg_catalog.pg_partition_tree($1) WHERE relid <> $1",
                               {{REGCLASSOID, std::to_string(rel)}}, true);
    std::vector<std::string> out;
    for (std::uint64_t i = 0; i < n; i++) out.push_back(*spi_text(i, 1));
    return out;
}

}  // namespace

LEADSCORE_FUNCTION(leadscore_track) {
    const std::string model = text_arg(fcinfo, 0, "model");
    for (int i = 1; i <= 4; i++)
        if (PG_ARGISNULL(i))
            raise(sqlstate::kInvalidParameterValue,
                  "leadscore.track: activities, lead_column, type_column and time_column must not be NULL");
    const Oid activities = PG_GETARG_OID(1);
    const std::string lead_column = name_arg(fcinfo, 2);
    const std::string type_column = name_arg(fcinfo, 3);
    const std::string time_column = name_arg(fcinfo, 4);
    const Oid leads = PG_ARGISNULL(5) ? InvalidOid : PG_GETARG_OID(5);
    const std::optional<std::string> lead_key =
        PG_ARGISNULL(6) ? std::nullopt : std::optional<std::string>(name_arg(fcinfo, 6));
    if (OidIsValid(leads) != lead_key.has_value())
        raise(sqlstate::kInvalidParameterValue, "leadscore.track: leads and lead_key must be given together");

    std::int64_t scored = 0;
    std::string qualified;
    {
        SpiConnection spi;
        if (spi_exec("SELECT 1 FROM leadscore.model WHERE name = $1", {{TEXTOID, model}}, true) == 0)
            raise(sqlstate::kUndefinedObject, "leadscore.track: model \"" + model + "\" does not exist",
                  std::string(), "Insert it into leadscore.model first.");
        if (spi_exec("SELECT 1 FROM leadscore.tracking WHERE model = $1", {{TEXTOID, model}}, true) > 0)
            raise(sqlstate::kObjectNotInPrerequisiteState, "leadscore.track: model \"" + model + "\" is already tracked",
                  std::string(), "Call leadscore.untrack() first to attach it elsewhere.");
        const std::string activities_name = relation_display_name(activities);
        char relkind = 0;
        pg_guard([&] { relkind = get_rel_relkind(activities); });
        if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE)
            raise(sqlstate::kInvalidParameterValue, "leadscore.track: " + activities_name + " is not a table");
        const AttrNumber lead_att = column_of(activities, lead_column, activities_name, "lead_column");
        column_of(activities, type_column, activities_name, "type_column");
        const AttrNumber time_att = column_of(activities, time_column, activities_name, "time_column");
        Oid key_type = InvalidOid, time_type = InvalidOid;
        pg_guard([&] {
            key_type = get_atttype(activities, lead_att);
            time_type = get_atttype(activities, time_att);
        });
        if (!is_supported_time_type(time_type))
            raise(sqlstate::kDatatypeMismatch, "leadscore.track: time_column \"" + time_column + "\" of " +
                                                   activities_name + " must be timestamptz, timestamp or date");
        std::string leads_name;
        if (OidIsValid(leads)) {
            leads_name = relation_display_name(leads);
            const AttrNumber key_att = column_of(leads, *lead_key, leads_name, "lead_key");
            Oid lead_key_type = InvalidOid;
            pg_guard([&] { lead_key_type = get_atttype(leads, key_att); });
            if (lead_key_type != key_type)
                raise(sqlstate::kDatatypeMismatch, "leadscore.track: lead_key \"" + *lead_key + "\" of " + leads_name +
                                                       " and lead_column \"" + lead_column + "\" of " +
                                                       activities_name + " must have the same type");
            if (!has_leading_index(leads, key_att))
                ereport(NOTICE, (errmsg("leadscore: %s has no index on \"%s\"; scoring new leads will scan it",
                                        leads_name.c_str(), lead_key->c_str())));
        }
        if (!has_leading_index(activities, lead_att)) {
            const std::string hint = "CREATE INDEX ON " + activities_name + " (" + quote_ident(lead_column) + ")";
            ereport(NOTICE, (errmsg("leadscore: %s has no index on \"%s\"; scoring new leads will scan it",
                                    activities_name.c_str(), lead_column.c_str()),
                             errhint("%s", hint.c_str())));
        }
        spi_exec("SELECT 'state_' || substr(md5($1), 1, 16)", {{TEXTOID, model}}, true);
        const std::string state_table = *spi_text(0, 1);
        std::string key_type_name;
        pg_guard([&] { key_type_name = format_type_be(key_type); });
        spi_exec("INSERT INTO leadscore.tracking (model, activities, lead_column, type_column, time_column, leads, "
                 "lead_key, state_table) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                 {{TEXTOID, model},
                  {OIDOID, std::to_string(activities)},
                  {NAMEOID, lead_column},
                  {NAMEOID, type_column},
                  {NAMEOID, time_column},
                  {OIDOID, OidIsValid(leads) ? std::optional<std::string>(std::to_string(leads)) : std::nullopt},
                  {NAMEOID, lead_key},
                  {NAMEOID, state_table}});
        qualified = "leadscore." + quote_ident(state_table);
        // No index but the key, so live updates can stay HOT (no index writes); refresh()
        // finds due rows with a sequential scan instead. Filled at 45% (below), so that a
        // statement can update every row of a page in place.
        spi_exec("CREATE TABLE " + qualified + " (lead " + key_type_name + " PRIMARY KEY, CHECK (model = " +
                     quote_literal(model) + ")) INHERITS (leadscore.lead_state) WITH (fillfactor = " +
                     std::to_string(kStateFillFactor) + ")",
                 {});
        spi_exec("COMMENT ON TABLE " + qualified + " IS " +
                     quote_literal("leadscore per-lead state of model " + model + " (managed by leadscore.track)"),
                 {});
        const std::string prefix = trigger_prefix(state_table);
        create_triggers(prefix, activities_name, "activity_changed", model);
        for (const std::string& part : partitions_of(activities))
            create_triggers(prefix, part, "activity_changed", model);
        if (OidIsValid(leads)) {
            create_triggers(prefix, leads_name, "lead_changed", model);
            for (const std::string& part : partitions_of(leads)) create_triggers(prefix, part, "lead_changed", model);
        }
    }
    invalidate_cache();
    rescore_model(model, transaction_now(), false, &scored);
    {
        // Pages stay as filled; 90 from now on only moves HOT pruning from nearly every
        // update (a page is pruned when its free space falls below 100 - fillfactor percent)
        // to every tenth or so. New leads fill pages further.
        SpiConnection spi;
        spi_exec("ALTER TABLE " + qualified + " SET (fillfactor = " + std::to_string(kStatePruneFillFactor) + ")", {});
    }
    PG_RETURN_INT64(scored);
}

LEADSCORE_FUNCTION(leadscore_untrack) {
    const std::string model = text_arg(fcinfo, 0, "model");
    SpiConnection spi;
    if (spi_exec("SELECT activities::oid, leads::oid, state_table::text FROM leadscore.tracking WHERE model = $1",
                 {{TEXTOID, model}}, true) == 0)
        raise(sqlstate::kObjectNotInPrerequisiteState, "leadscore.untrack: model \"" + model + "\" is not tracked");
    const Oid activities = DatumGetObjectId(*spi_datum(0, 1));
    const auto leads = spi_datum(0, 2);
    const std::string state_table = *spi_text(0, 3);
    const std::string prefix = trigger_prefix(state_table);
    const std::vector<std::string> activity_parts = partitions_of(activities);
    drop_triggers(prefix, relation_display_name(activities));
    for (const std::string& part : activity_parts) drop_triggers(prefix, part);
    if (leads) {
        const Oid leads_oid = DatumGetObjectId(*leads);
        const std::vector<std::string> lead_parts = partitions_of(leads_oid);
        drop_triggers(prefix, relation_display_name(leads_oid));
        for (const std::string& part : lead_parts) drop_triggers(prefix, part);
    }
    spi_exec("DROP TABLE IF EXISTS leadscore." + quote_ident(state_table), {});
    spi_exec("DELETE FROM leadscore.stage_history WHERE model = $1", {{TEXTOID, model}});
    spi_exec("DELETE FROM leadscore.tracking WHERE model = $1", {{TEXTOID, model}});
    invalidate_cache();
    PG_RETURN_BOOL(true);
}

// ---------------------------------------------------------------------------
// Rule validation (BEFORE ROW trigger on the rule tables).
// ---------------------------------------------------------------------------

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
        std::vector<std::optional<std::string>> out;
        pg_guard([&] {
            ArrayType* arr = DatumGetArrayTypeP(*d);
            Datum* elems;
            bool* nulls;
            int n;
            deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
            for (int i = 0; i < n; i++)
                out.emplace_back(nulls[i] ? std::nullopt
                                          : std::optional<std::string>(std::string(VARDATA_ANY(elems[i]),
                                                                                   VARSIZE_ANY_EXHDR(elems[i]))));
        });
        return out;
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
    Matcher matcher;
    compile_condition(full_label, relname, desc, spec, matcher, scratch);
    pg_guard([&] { MemoryContextDelete(scratch); });
}

}  // namespace

LEADSCORE_FUNCTION(leadscore_validate_rule) {
    if (!CALLED_AS_TRIGGER(fcinfo))
        raise(sqlstate::kObjectNotInPrerequisiteState, "leadscore.validate_rule() must be called as a trigger");
    TriggerData* trig = reinterpret_cast<TriggerData*>(fcinfo->context);
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

// ---------------------------------------------------------------------------
// Rule changes: drop every session's cached rules, rescore affected tracked models.
// ---------------------------------------------------------------------------

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
    if (!CALLED_AS_TRIGGER(fcinfo))
        raise(sqlstate::kObjectNotInPrerequisiteState, "leadscore.rules_changed() must be called as a trigger");
    TriggerData* trig = reinterpret_cast<TriggerData*>(fcinfo->context);
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
