// Citus, found at run time: distribution facts from its catalogs (through SPI, so that nothing
// links against it), shard lookups for live triggers, and leadscore.cluster_model, the copy of
// each distributed model's rules that every node reads.
#include <unordered_map>
#include <vector>

#include "pg/citus.hpp"
#include "pg/relations.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "utils/lsyscache.h"
}

namespace leadscore::pg::citus {

namespace {

// Backend-lifetime cache of which relations are shards (a shard keeps its OID until it moves,
// and a moved shard is a new relation).
std::unordered_map<Oid, std::optional<Shard>>& shard_cache() {
    static auto& cache = *new std::unordered_map<Oid, std::optional<Shard>>();
    return cache;
}

// The JSON array of a rule table's rows a model's copy holds; regclass columns as qualified
// names, which every node resolves to its own relation.
std::string rows_of(const char* table, const std::string& where, const std::string& extra = std::string()) {
    return std::string("'") + table + "', (SELECT coalesce(jsonb_agg(to_jsonb(x)" + extra +
           "), '[]') FROM leadscore." + table + " x " + where + ")";
}

std::string qualified(const char* column) {
    return std::string(" || jsonb_build_object('") + column + "', (SELECT format('%I.%I', n.nspname, c.relname) FROM "
           "pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = x." +
           column + "))";
}

}  // namespace

bool loaded() {
    bool found = false;
    pg_guard([&] { found = OidIsValid(get_extension_oid("citus", true)); });
    return found;
}

std::optional<Distribution> distribution_of(Oid relid) {
    if (!loaded()) return std::nullopt;
    if (spi_exec("SELECT pg_catalog.column_to_column_name(logicalrelid, partkey), colocationid::bigint "
                 "FROM pg_catalog.pg_dist_partition WHERE logicalrelid = $1 AND partmethod = 'h'",
                 {{OIDOID, std::to_string(relid)}}, true) == 0)
        return std::nullopt;
    Distribution d;
    d.column = *spi_text(0, 1);
    d.colocation = std::stoll(*spi_text(0, 2));
    return d;
}

bool is_reference_table(Oid relid) {
    if (!loaded()) return false;
    return spi_exec("SELECT 1 FROM pg_catalog.pg_dist_partition WHERE logicalrelid = $1 AND partmethod = 'n' "
                    "AND repmodel = 't'",
                    {{OIDOID, std::to_string(relid)}}, true) > 0;
}

std::optional<Shard> shard_of(Oid relid) {
    auto& cache = shard_cache();
    if (auto it = cache.find(relid); it != cache.end()) return it->second;
    std::optional<Shard> shard;
    // A shard is named after its table with "_<shard id>" appended (shortened with a hash when
    // too long); shard_name() says which name a shard id has. (Citus hides shards from
    // pg_class in client sessions: their names come from the relation cache.)
    std::string name;
    pg_guard([&] {
        if (const char* n = get_rel_name(relid)) name = n;
    });
    const std::size_t underscore = name.rfind('_');
    const std::string suffix = underscore == std::string::npos ? std::string() : name.substr(underscore + 1);
    const bool numbered = !suffix.empty() && suffix.size() < 19 &&
                          suffix.find_first_not_of("0123456789") == std::string::npos;
    std::optional<SpiConnection> spi;
    if (numbered) spi.emplace();
    if (numbered && loaded() &&
        spi_exec("SELECT s.logicalrelid::oid, s.shardminvalue FROM pg_catalog.pg_dist_shard s WHERE s.shardid = $2 "
                 "AND pg_catalog.to_regclass(pg_catalog.shard_name(s.logicalrelid, s.shardid)) = $1::oid::regclass",
                 {{OIDOID, std::to_string(relid)}, {INT8OID, suffix}}, true) > 0) {
        shard = Shard{DatumGetObjectId(*spi_datum(0, 1)), std::stoll(suffix), spi_text(0, 2).value_or("")};
    }
    cache.emplace(relid, shard);
    return shard;
}

std::string colocated_shard_name(Oid logical, const Shard& shard) {
    if (spi_exec("SELECT pg_catalog.to_regclass(pg_catalog.shard_name(x.logicalrelid, x.shardid))::oid "
                 "FROM pg_catalog.pg_dist_shard x WHERE x.logicalrelid = $1 AND x.shardminvalue = $2",
                 {{OIDOID, std::to_string(logical)}, {TEXTOID, shard.min_value}}, true) == 0 ||
        !spi_datum(0, 1))
        raise(sqlstate::kObjectNotInPrerequisiteState,
              "leadscore: no shard of a table co-located with shard " + std::to_string(shard.id) + " is on this node",
              std::string(), "The tables of a model must stay co-located (colocate_with) when shards move.");
    const Oid oid = DatumGetObjectId(*spi_datum(0, 1));
    std::string name;
    pg_guard([&] { name = get_rel_name(oid); });
    return name;
}

std::string history_table_of(const std::string& state_table) { return state_table + "_history"; }

void allow_triggers() {
    spi_exec("SELECT pg_catalog.set_config('citus.enable_unsafe_triggers', 'on', true)", {});
}

void check_trackable(const std::string& model, Oid activities, const std::string& lead_column, Oid leads,
                     const std::optional<std::string>& lead_key) {
    const std::optional<Distribution> a = distribution_of(activities);
    const std::string prefix = "leadscore.track: ";
    if (a->column != lead_column)
        raise(sqlstate::kFeatureNotSupported,
              prefix + relation_display_name(activities) + " is distributed by \"" + a->column +
                  "\", not by its lead column \"" + lead_column + "\"",
              std::string(), "Distribute the activities by the lead key (create_distributed_table(..., '" +
                                 lead_column + "')) so that each lead's activities and state share a shard.");
    if (OidIsValid(leads)) {
        const std::optional<Distribution> l = distribution_of(leads);
        if (!l || l->column != *lead_key || l->colocation != a->colocation)
            raise(sqlstate::kFeatureNotSupported,
                  prefix + relation_display_name(leads) + " must be distributed by \"" + *lead_key +
                      "\" and co-located with " + relation_display_name(activities),
                  std::string(), "create_distributed_table('" + relation_display_name(leads) + "', '" + *lead_key +
                                     "', colocate_with => '" + relation_display_name(activities) + "')");
    }
    if (spi_exec("SELECT 1 FROM leadscore.relation WHERE model = $1", {{TEXTOID, model}}, true) > 0)
        raise(sqlstate::kFeatureNotSupported,
              prefix + "model \"" + model + "\" has relations (leadscore.relation), which are not supported yet on "
                       "Citus-distributed tables",
              std::string(), "Copy the related columns the rules read into the leads table.");
}

void create_distributed_tables(const std::string& model, const std::string& state_table, const std::string& key_type,
                               const std::string& activities_name, int fill_factor) {
    // No inheritance (Citus cannot distribute a child table): the columns of lead_state, then
    // the typed key, as the state row description expects them by name.
    const std::string state = "leadscore." + quote_ident(state_table);
    spi_exec("CREATE TABLE " + state + " (LIKE leadscore.lead_state INCLUDING DEFAULTS, lead " + key_type +
                 " PRIMARY KEY, CHECK (model = " + quote_literal(model) + ")) WITH (fillfactor = " +
                 std::to_string(fill_factor) + ")",
             {});
    spi_exec("SELECT pg_catalog.create_distributed_table($1, 'lead', colocate_with => $2)",
             {{TEXTOID, state}, {TEXTOID, activities_name}});
    // refresh() on the coordinator marks the due rows; each shard computes its own.
    allow_triggers();
    spi_exec("CREATE TRIGGER leadscore_refresh BEFORE UPDATE ON " + state +
                 " FOR EACH ROW WHEN (NEW.next_change = '-infinity') EXECUTE FUNCTION leadscore.state_refreshed(" +
                 quote_literal(model) + ")",
             {});
    const std::string history = "leadscore." + quote_ident(history_table_of(state_table));
    spi_exec("CREATE TABLE " + history + " (lead " + key_type +
                 " NOT NULL, LIKE leadscore.stage_history INCLUDING DEFAULTS, notify_pending boolean NOT NULL "
                 "DEFAULT false, PRIMARY KEY (lead, id))",
             {});
    spi_exec("CREATE INDEX ON " + history + " (changed_at)", {});
    // Changes scored on a node wait here for leadscore.notify_stage_changes() on the coordinator.
    spi_exec("CREATE INDEX ON " + history + " (id) WHERE notify_pending", {});
    spi_exec("COMMENT ON TABLE " + history + " IS " +
                 quote_literal("leadscore stage history of model " + model + " (managed by leadscore.track)"),
             {});
    spi_exec("SELECT pg_catalog.create_distributed_table($1, 'lead', colocate_with => $2)",
             {{TEXTOID, history}, {TEXTOID, activities_name}});
}

void sync_views() {
    if (!loaded()) return;
    const char* state_columns = "model, lead_id, score, fit_score, engagement_score, stage, disqualified, "
                                "fit_disqualified, stage_since, scored_at, next_change, summary";
    const char* history_columns = "model, lead_id, from_stage, to_stage, score, changed_at, id";
    std::string state_sql, history_sql;
    const std::uint64_t n =
        spi_exec("SELECT t.state_table::text FROM leadscore.tracking t WHERE EXISTS (SELECT 1 FROM "
                 "pg_catalog.pg_dist_partition p WHERE p.logicalrelid = t.activities) ORDER BY t.model",
                 {}, true);
    std::vector<std::string> tables;
    for (std::uint64_t i = 0; i < n; i++) tables.push_back(*spi_text(i, 1));
    for (const std::string& t : tables) {
        if (!state_sql.empty()) state_sql += " UNION ALL ";
        if (!history_sql.empty()) history_sql += " UNION ALL ";
        state_sql += std::string("SELECT ") + state_columns + " FROM leadscore." + quote_ident(t);
        history_sql += std::string("SELECT ") + history_columns + " FROM leadscore." + quote_ident(history_table_of(t));
    }
    if (tables.empty()) {
        state_sql = std::string("SELECT ") + state_columns + " FROM leadscore.lead_state WHERE false";
        history_sql = std::string("SELECT ") + history_columns + " FROM leadscore.stage_history WHERE false";
    }
    spi_exec("CREATE OR REPLACE VIEW leadscore.distributed_state AS " + state_sql, {});
    spi_exec("CREATE OR REPLACE VIEW leadscore.distributed_history AS " + history_sql, {});
}

void ensure_cluster_model() {
    if (OidIsValid(leadscore_relation_oid("cluster_model"))) return;
    spi_exec("CREATE TABLE leadscore.cluster_model (model text PRIMARY KEY, tables jsonb NOT NULL)", {});
    spi_exec("COMMENT ON TABLE leadscore.cluster_model IS 'Copy of each distributed model''s rules, stages, lists "
             "and tracking that every Citus node reads (written by leadscore in the rule edit''s transaction)'",
             {});
    spi_exec("SELECT pg_catalog.create_reference_table('leadscore.cluster_model')", {});
    // Every node's placement drops cached models when it changes.
    allow_triggers();
    spi_exec("CREATE TRIGGER cluster_model_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON "
             "leadscore.cluster_model FOR EACH STATEMENT EXECUTE FUNCTION leadscore.cluster_model_changed()",
             {});
}

void publish_model(const std::string& model) {
    ensure_cluster_model();
    // Later statements of this transaction reach each node over the connection that wrote its
    // copy, so that its live triggers read the new rules.
    spi_exec("SELECT pg_catalog.set_config('citus.multi_shard_modify_mode', 'sequential', true)", {});
    const std::string of_model = "WHERE x.model = $1";
    spi_exec("INSERT INTO leadscore.cluster_model (model, tables) SELECT $1, jsonb_build_object(" +
                 rows_of("model", "WHERE x.name = $1") + ", " + rows_of("activity_rule", of_model) + ", " +
                 rows_of("fit_rule", of_model) + ", " + rows_of("stage", of_model) + ", " +
                 rows_of("activity_condition",
                         "WHERE x.rule_id IN (SELECT id FROM leadscore.activity_rule WHERE model = $1)") +
                 ", " +
                 rows_of("fit_condition", "WHERE x.rule_id IN (SELECT id FROM leadscore.fit_rule WHERE model = $1)") +
                 ", " + rows_of("relation", of_model, qualified("target")) + ", " +
                 rows_of("tracking", of_model, qualified("activities") + qualified("leads")) + ", " +
                 rows_of("list_entry", "") +
                 ") ON CONFLICT (model) DO UPDATE SET tables = excluded.tables",
             {{TEXTOID, model}});
}

void unpublish_model(const std::string& model) {
    if (!OidIsValid(leadscore_relation_oid("cluster_model"))) return;
    spi_exec("DELETE FROM leadscore.cluster_model WHERE model = $1", {{TEXTOID, model}});
}

std::optional<std::string> published_model(const std::string& model, Oid* placement) {
    if (spi_exec("SELECT pg_catalog.to_regclass(pg_catalog.shard_name(s.logicalrelid, s.shardid))::oid "
                 "FROM pg_catalog.pg_dist_shard s WHERE s.logicalrelid = pg_catalog.to_regclass('leadscore.cluster_model')",
                 {}, true) == 0)
        return std::nullopt;
    const std::optional<Datum> local = spi_datum(0, 1);
    if (!local) return std::nullopt;
    *placement = DatumGetObjectId(*local);
    // This node's placement, read as a plain table: Citus runs no distributed query from
    // inside one (the aggregate's work pushed down to a node).
    if (spi_exec("SELECT tables::text FROM " + relation_display_name(*placement) + " WHERE model = $1",
                 {{TEXTOID, model}}, true) == 0)
        return std::nullopt;
    return spi_text(0, 1);
}

}  // namespace leadscore::pg::citus
