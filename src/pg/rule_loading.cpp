// Reading a model from the rule tables into the core's rule model, and compiling its
// conditions for the tables it is tracked on.
#include <algorithm>
#include <cctype>
#include <map>

#include "core/decimal.hpp"
#include "pg/citus.hpp"
#include "pg/conditions.hpp"
#include "pg/relations.hpp"
#include "pg/rule_loading.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "utils/lsyscache.h"
}

namespace leadscore::pg {

namespace {

// On a Citus node, a distributed model is read from its copy in leadscore.cluster_model (the
// JSON of its rule tables' rows) while load_published_model runs; otherwise from the tables.
const std::string* published_tables = nullptr;

}  // namespace

std::string rule_source(const char* table) {
    if (!published_tables) return std::string("leadscore.") + table;
    return std::string("jsonb_populate_recordset(NULL::leadscore.") + table + ", " + quote_literal(*published_tables) +
           "::jsonb -> '" + table + "')";
}

namespace {

std::optional<MicroPoints> numeric_column(std::uint64_t row, int col, const std::string& label, const char* name) {
    auto text = spi_text(row, col);
    if (!text) return std::nullopt;
    return parse_rule_points(label, name, *text);
}

bool bool_column(std::uint64_t row, int col, bool fallback) {
    auto d = spi_datum(row, col);
    return d ? DatumGetBool(*d) : fallback;
}

std::vector<std::optional<std::string>> text_array_column(std::uint64_t row, int col) {
    auto d = spi_datum(row, col);
    if (!d) return {};
    return text_array_elements(*d);
}

}  // namespace

std::optional<TrackingInfo> load_tracking(const std::string& model) {
    // (Absent before SQL version 0.5.0: the library may run under an older script until the update.)
    const char* matched = rule_table_has_column("tracking", "disabled_rules_matched")
                              ? "coalesce(disabled_rules_matched, false)"
                              : "false";
    spi_exec(
        "SELECT activities::oid, lead_column::text, type_column::text, time_column::text, leads::oid, "
        "lead_key::text, state_table::text, " + std::string(matched) + " FROM " + rule_source("tracking") +
            " WHERE model = $1",
        {{TEXTOID, model}}, true);
    if (SPI_processed == 0) return std::nullopt;
    TrackingInfo t;
    t.model = model;
    t.tables_from = model;
    t.activities = DatumGetObjectId(*spi_datum(0, 1));
    t.lead_column = *spi_text(0, 2);
    t.type_column = *spi_text(0, 3);
    t.time_column = *spi_text(0, 4);
    if (auto l = spi_datum(0, 5)) t.leads = DatumGetObjectId(*l);
    if (auto k = spi_text(0, 6)) t.lead_key = *k;
    t.state_table = *spi_text(0, 7);
    t.disabled_rules_matched = DatumGetBool(*spi_datum(0, 8));
    t.activities_name = relation_display_name(t.activities);
    if (OidIsValid(t.leads)) t.leads_name = relation_display_name(t.leads);
    pg_guard([&] {
        AttrNumber lead_att = get_attnum(t.activities, t.lead_column.c_str());
        AttrNumber time_att = get_attnum(t.activities, t.time_column.c_str());
        if (lead_att == InvalidAttrNumber || time_att == InvalidAttrNumber)
            ereport(ERROR, (errcode(ERRCODE_UNDEFINED_COLUMN),
                            errmsg("leadscore: a tracked column of model \"%s\" no longer exists in %s",
                                   model.c_str(), t.activities_name.c_str()),
                            errhint("Run leadscore.untrack('%s') and track the model again.", model.c_str())));
        t.key_type = get_atttype(t.activities, lead_att);
        t.time_type = get_atttype(t.activities, time_att);
    });
    t.key_type_name = type_name(t.key_type);
    if (citus::distribution_of(t.activities)) {
        t.distributed = true;
        t.history_table = "leadscore." + quote_ident(citus::history_table_of(t.state_table));
    }
    return t;
}

std::vector<RelationInfo> load_relations(const std::string& model) {
    std::vector<RelationInfo> out;
    if (!OidIsValid(leadscore_relation_oid("relation"))) return out;
    spi_exec("SELECT name, lead_column::text, target::oid, target_key::text FROM " + rule_source("relation") + " WHERE model = $1 "
             "ORDER BY name",
             {{TEXTOID, model}}, true);
    for (std::uint64_t i = 0; i < SPI_processed; i++) {
        RelationInfo r;
        r.name = *spi_text(i, 1);
        r.lead_column = *spi_text(i, 2);
        r.target = DatumGetObjectId(*spi_datum(i, 3));
        r.target_key = *spi_text(i, 4);
        out.push_back(std::move(r));
    }
    for (RelationInfo& r : out) r.target_name = relation_display_name(r.target);
    return out;
}

namespace {

// Condition rows of a model's rules of one family, by rule id.
std::map<std::int64_t, std::vector<ConditionRowSpec>> load_condition_rows(const std::string& model, bool activity) {
    std::map<std::int64_t, std::vector<ConditionRowSpec>> out;
    const char* table = activity ? "activity_condition" : "fit_condition";
    if (!OidIsValid(leadscore_relation_oid(table))) return out;
    const std::string rules = rule_source(activity ? "activity_rule" : "fit_rule");
    spi_exec("SELECT c.id, c.rule_id, c.grp, c.attribute, c.op, c.value FROM " + rule_source(table) +
                 " c JOIN " + rules + " r ON r.id = c.rule_id WHERE r.model = $1",
             {{TEXTOID, model}}, true);
    for (std::uint64_t i = 0; i < SPI_processed; i++) {
        ConditionRowSpec c;
        c.id = DatumGetInt64(*spi_datum(i, 1));
        c.grp = DatumGetInt32(*spi_datum(i, 3));
        c.condition.attribute = *spi_text(i, 4);
        c.condition.op = parse_op(*spi_text(i, 5));
        c.condition.values = text_array_column(i, 6);
        out[DatumGetInt64(*spi_datum(i, 2))].push_back(std::move(c));
    }
    for (auto& [id, rows] : out) order_conditions(rows);
    return out;
}

}  // namespace

bool rule_table_has_column(const char* table, const char* column) {
    const Oid rel = leadscore_relation_oid(table);
    AttrNumber att = InvalidAttrNumber;
    if (OidIsValid(rel)) pg_guard([&] { att = get_attnum(rel, column); });
    return att != InvalidAttrNumber;
}

std::string rule_label(const char* table, const std::string& name, std::int64_t id) {
    return std::string(table) + " \"" + name + "\" (id " + std::to_string(id) + ")";
}

std::vector<std::string> load_list(const std::string& list, bool lower) {
    spi_exec("SELECT value FROM " + rule_source("list_entry") + " WHERE list = $1", {{TEXTOID, list}}, true);
    std::vector<std::string> values;
    for (std::uint64_t i = 0; i < SPI_processed; i++) {
        std::string v = *spi_text(i, 1);
        if (lower)
            std::transform(v.begin(), v.end(), v.begin(),
                           [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        values.push_back(std::move(v));
    }
    std::sort(values.begin(), values.end());
    values.erase(std::unique(values.begin(), values.end()), values.end());
    return values;
}

std::unique_ptr<CompiledModel> load_model(const std::string& name, const std::string& tables_from) {
    auto cm = std::make_unique<CompiledModel>();
    pg_guard([&] {
        cm->context = AllocSetContextCreate(CacheMemoryContext, "leadscore model", ALLOCSET_SMALL_SIZES);
    });
    ModelSpec spec;
    spec.name = name;
    spi_exec("SELECT score_min::text, score_max::text FROM " + rule_source("model") + " WHERE name = $1", {{TEXTOID, name}}, true);
    if (SPI_processed == 0)
        raise(sqlstate::kUndefinedObject, "leadscore model \"" + name + "\" does not exist", std::string(),
              "Insert it into leadscore.model first.");
    const std::string model_label = "model \"" + name + "\"";
    spec.score_min = numeric_column(0, 1, model_label, "score_min");
    spec.score_max = numeric_column(0, 2, model_label, "score_max");

    std::vector<ActivityRuleSpec> activity_rules;
    // The library may be newer than the extension's SQL (before ALTER EXTENSION UPDATE):
    // columns a release added read as NULL until then.
    const std::string time_patterns = rule_table_has_column("activity_rule", "quiet_for")
                                          ? "min_count, within, cooldown, quiet_for"
                                          : "NULL::integer, NULL::interval, NULL::interval, NULL::interval";
    const bool has_multiply = rule_table_has_column("activity_rule", "multiply_by");
    const std::string multiply = has_multiply ? ", multiply_by" : ", NULL::text";
    spi_exec(
        "SELECT id, name, activity_type, attribute, op, value, points::text, once, max_count, max_points::text, "
        "expires_after, half_life, disqualify, enabled, " +
            time_patterns + multiply + " FROM " + rule_source("activity_rule") + " WHERE model = $1 ORDER BY id",
        {{TEXTOID, name}}, true);
    for (std::uint64_t i = 0; i < SPI_processed; i++) {
        ActivityRuleSpec r;
        r.id = DatumGetInt64(*spi_datum(i, 1));
        r.model = name;
        r.name = *spi_text(i, 2);
        r.activity_type = *spi_text(i, 3);
        const std::string label = rule_label("activity_rule", r.name, r.id);
        if (auto a = spi_text(i, 4)) r.condition.attribute = *a;
        if (auto o = spi_text(i, 5)) r.condition.op = parse_op(*o);
        r.condition.values = text_array_column(i, 6);
        r.points = parse_rule_points(label, "points", *spi_text(i, 7));
        r.once = bool_column(i, 8, false);
        if (auto mc = spi_datum(i, 9)) r.max_count = DatumGetInt32(*mc);
        r.max_points = numeric_column(i, 10, label, "max_points");
        if (auto e = spi_datum(i, 11)) r.expires_after = to_core_interval(*e);
        if (auto h = spi_datum(i, 12)) r.half_life = to_core_interval(*h);
        r.disqualify = bool_column(i, 13, false);
        r.enabled = bool_column(i, 14, true);
        if (auto mc = spi_datum(i, 15)) r.min_count = DatumGetInt32(*mc);
        if (auto w = spi_datum(i, 16)) r.within = to_core_interval(*w);
        if (auto c = spi_datum(i, 17)) r.cooldown = to_core_interval(*c);
        if (auto q = spi_datum(i, 18)) r.quiet_for = to_core_interval(*q);
        if (auto m = spi_text(i, 19)) r.multiply_by = *m;
        activity_rules.push_back(std::move(r));
    }

    std::vector<FitRuleSpec> fit_rules;
    spi_exec("SELECT id, name, attribute, op, value, points::text, disqualify, enabled" + multiply +
                 " FROM " + rule_source("fit_rule") + " WHERE model = $1 ORDER BY id",
             {{TEXTOID, name}}, true);
    for (std::uint64_t i = 0; i < SPI_processed; i++) {
        FitRuleSpec r;
        r.id = DatumGetInt64(*spi_datum(i, 1));
        r.model = name;
        r.name = *spi_text(i, 2);
        const std::string label = rule_label("fit_rule", r.name, r.id);
        if (auto a = spi_text(i, 3)) r.condition.attribute = *a;
        if (auto o = spi_text(i, 4)) r.condition.op = parse_op(*o);
        r.condition.values = text_array_column(i, 5);
        r.points = parse_rule_points(label, "points", *spi_text(i, 6));
        r.disqualify = bool_column(i, 7, false);
        r.enabled = bool_column(i, 8, true);
        if (auto m = spi_text(i, 9)) r.multiply_by = *m;
        fit_rules.push_back(std::move(r));
    }

    std::vector<StageSpec> stages;
    spi_exec("SELECT name, min_score::text, min_fit::text, min_engagement::text, sticky FROM " + rule_source("stage") +
                 " WHERE model = $1",
             {{TEXTOID, name}}, true);
    for (std::uint64_t i = 0; i < SPI_processed; i++) {
        StageSpec s;
        s.name = *spi_text(i, 1);
        const std::string label = "stage \"" + s.name + "\" of model \"" + name + "\"";
        s.min_score = numeric_column(i, 2, label, "min_score");
        s.min_fit = numeric_column(i, 3, label, "min_fit");
        s.min_engagement = numeric_column(i, 4, label, "min_engagement");
        s.sticky = bool_column(i, 5, false);
        stages.push_back(std::move(s));
    }

    auto activity_rows = load_condition_rows(name, true);
    for (ActivityRuleSpec& r : activity_rules)
        if (auto it = activity_rows.find(r.id); it != activity_rows.end()) r.conditions = std::move(it->second);
    auto fit_rows = load_condition_rows(name, false);
    for (FitRuleSpec& r : fit_rules)
        if (auto it = fit_rows.find(r.id); it != fit_rows.end()) r.conditions = std::move(it->second);
    cm->relations = load_relations(name);

    cm->tracking = load_tracking(tables_from);
    if (cm->tracking) cm->tracking->model = name;
    cm->model = std::make_unique<Model>(spec, activity_rules, fit_rules, stages);
    if (cm->tracking) compile_model_conditions(*cm);
    return cm;
}

std::unique_ptr<CompiledModel> load_published_model(const std::string& name, const std::string& tables) {
    published_tables = &tables;
    try {
        std::unique_ptr<CompiledModel> cm = load_model(name, name);
        published_tables = nullptr;
        return cm;
    } catch (...) {
        published_tables = nullptr;
        throw;
    }
}

}  // namespace leadscore::pg
