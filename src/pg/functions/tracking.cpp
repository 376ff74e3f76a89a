// SQL API: track() attaches a model to the CRM's tables (state table, live triggers on the
// tables and their partitions, initial scoring); untrack() detaches it.
#include <algorithm>

#include "pg/args.hpp"
#include "pg/citus.hpp"
#include "pg/model_cache.hpp"
#include "pg/recompute.hpp"
#include "pg/rule_edits.hpp"
#include "pg/related.hpp"
#include "pg/relations.hpp"
#include "pg/rule_loading.hpp"
#include "pg/spi.hpp"
#include "pg/state_row.hpp"

extern "C" {
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/relcache.h"
}

using namespace leadscore;
using namespace leadscore::pg;

namespace {

// Fillfactor of a state table while track() fills it: a page's rows take at most 45%, so
// each has room for a new version on its own page. A state row is about 350 bytes.
constexpr int kStateFillFactor = 45;
// Its fillfactor afterwards, for the pages that later rows fill and for pruning.
constexpr int kStatePruneFillFactor = 90;

// The new state table has every column the state row description names (lead_state and the
// C++ description are kept in step by the install and upgrade scripts).
void check_state_table(const std::string& qualified, Oid key_type) {
    spi_exec("SELECT " + quote_literal(qualified) + "::regclass::oid", {}, true);
    const Oid relid = DatumGetObjectId(*spi_datum(0, 1));
    std::vector<std::int16_t> attnums;
    pg_guard([&] {
        Relation rel = RelationIdGetRelation(relid);
        resolve_state_attnums(rel, key_type, attnums);
        RelationClose(rel);
    });
}

std::string trigger_prefix(const std::string& state_table) { return "leadscore_" + state_table; }

// Triggers fire in name order. On a Citus table the truncate trigger must come after Citus's
// own (truncate_trigger_<oid>, which empties the shards) to see the table empty.
std::string truncate_trigger_name(const std::string& prefix, bool distributed) {
    return (distributed ? "z_" : "") + prefix + "_trunc";
}

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
                     const std::string& model, bool distributed = false) {
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
    spi_exec("CREATE TRIGGER " + quote_ident(truncate_trigger_name(prefix, distributed)) + " AFTER TRUNCATE ON " + table +
                 " FOR EACH STATEMENT EXECUTE FUNCTION " + fn,
             {});
}

// A partition's row trigger is a clone that goes with its parent's. Only those that exist
// (no "does not exist" notices, which Citus repeats for every shard).
void drop_triggers(const std::string& prefix, const std::string& table, bool partition = false) {
    std::vector<std::string> present;
    const std::uint64_t n =
        spi_exec("SELECT tgname::text FROM pg_catalog.pg_trigger WHERE tgrelid = $1::regclass AND NOT tgisinternal",
                 {{TEXTOID, table}}, true);
    for (std::uint64_t i = 0; i < n; i++) present.push_back(*spi_text(i, 1));
    std::vector<std::string> names;
    for (const char* suffix : {"_ins", "_upd", "_del", "_trunc", "_rtrunc"}) names.push_back(prefix + suffix);
    if (!partition) names.push_back(prefix + "_row");
    names.push_back(truncate_trigger_name(prefix, true));
    for (const std::string& name : names)
        if (std::find(present.begin(), present.end(), name) != present.end())
            spi_exec("DROP TRIGGER " + quote_ident(name) + " ON " + table, {});
}

// Logical replication applies changes with session_replication_role = replica: only triggers
// enabled REPLICA or ALWAYS fire, and row changes fire no statement triggers. A row trigger
// enabled REPLICA scores them (partitions inherit it); it never fires in ordinary sessions.
void create_replica_row_trigger(const std::string& prefix, const std::string& table, const std::string& function,
                                const std::string& model) {
    const std::string name = quote_ident(prefix + "_row");
    spi_exec("CREATE TRIGGER " + name + " AFTER INSERT OR UPDATE OR DELETE ON " + table +
                 " FOR EACH ROW EXECUTE FUNCTION leadscore." + function + "(" + quote_literal(model) + ")",
             {});
    spi_exec("ALTER TABLE " + table + " ENABLE REPLICA TRIGGER " + name, {});
}

// A replicated TRUNCATE fires statement triggers enabled REPLICA, on the table it names.
void create_replica_truncate_trigger(const std::string& prefix, const std::string& table, const std::string& function,
                                     const std::string& model) {
    const std::string name = quote_ident(prefix + "_rtrunc");
    spi_exec("CREATE TRIGGER " + name + " AFTER TRUNCATE ON " + table + " FOR EACH STATEMENT EXECUTE FUNCTION leadscore." +
                 function + "(" + quote_literal(model) + ")",
             {});
    spi_exec("ALTER TABLE " + table + " ENABLE REPLICA TRIGGER " + name, {});
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

// Installs (or drops) the replica triggers of one tracked table and its partitions.
void set_replica_triggers(bool on, const std::string& prefix, Oid rel, const std::string& function,
                          const std::string& model) {
    const std::string table = relation_display_name(rel);
    std::vector<std::string> tables = partitions_of(rel);
    tables.insert(tables.begin(), table);
    if (!on) {
        // The row trigger on a partitioned table takes its partitions' clones with it.
        spi_exec("DROP TRIGGER IF EXISTS " + quote_ident(prefix + "_row") + " ON " + table, {});
        for (const std::string& t : tables)
            spi_exec("DROP TRIGGER IF EXISTS " + quote_ident(prefix + "_rtrunc") + " ON " + t, {});
        return;
    }
    create_replica_row_trigger(prefix, table, function, model);
    for (const std::string& t : tables) create_replica_truncate_trigger(prefix, t, function, model);
}

}  // namespace

LEADSCORE_FUNCTION(leadscore_track) {
    note_state_writer();
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
    // Before 0.5.0's SQL the function has seven arguments.
    bool replica = false;
    if (PG_NARGS() > 7) {
        if (PG_ARGISNULL(7)) raise(sqlstate::kInvalidParameterValue, "leadscore.track: replica must not be NULL");
        replica = PG_GETARG_BOOL(7);
    }

    std::int64_t scored = 0;
    std::string qualified;
    bool distributed = false;
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
        // A rule edit that changes what an activity rule matches reads the rows of its type.
        const AttrNumber type_att = column_of(activities, type_column, activities_name, "type_column");
        if (!has_leading_index(activities, type_att) &&
            spi_exec("SELECT 1 FROM pg_catalog.pg_class WHERE oid = $1 AND reltuples > 100000",
                     {{OIDOID, std::to_string(activities)}}, true) > 0) {
            const std::string hint = "CREATE INDEX ON " + activities_name + " (" + quote_ident(type_column) + ")";
            ereport(NOTICE, (errmsg("leadscore: %s has no index on \"%s\"; a rule edit that changes what an activity "
                                    "rule matches will scan it",
                                    activities_name.c_str(), type_column.c_str()),
                             errhint("%s", hint.c_str())));
        }
        // Citus: state and history are distributed and co-located with the activities.
        distributed = citus::distribution_of(activities).has_value();
        if (distributed) {
            citus::check_trackable(model, activities, lead_column, leads, lead_key);
            replica = false;
        }
        spi_exec("SELECT 'state_' || substr(md5($1), 1, 16)", {{TEXTOID, model}}, true);
        const std::string state_table = *spi_text(0, 1);
        std::string key_type_name;
        pg_guard([&] { key_type_name = format_type_be(key_type); });
        const std::string replica_column = PG_NARGS() > 7 ? ", replica" : "";
        const std::string replica_value = PG_NARGS() > 7 ? (replica ? ", true" : ", false") : "";
        // (The initial scoring below keeps disabled rules' occurrences.)
        const bool has_matched = rule_table_has_column("tracking", "disabled_rules_matched");
        spi_exec("INSERT INTO leadscore.tracking (model, activities, lead_column, type_column, time_column, leads, "
                 "lead_key, state_table" + std::string(has_matched ? ", disabled_rules_matched" : "") + replica_column +
                     ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8" + (has_matched ? ", true" : "") + replica_value + ")",
                 {{TEXTOID, model},
                  {OIDOID, std::to_string(activities)},
                  {NAMEOID, lead_column},
                  {NAMEOID, type_column},
                  {NAMEOID, time_column},
                  {OIDOID, OidIsValid(leads) ? std::optional<std::string>(std::to_string(leads)) : std::nullopt},
                  {NAMEOID, lead_key},
                  {NAMEOID, state_table}});
        // The event trigger on ALTER TABLE rescores only when the tables' columns change.
        if (PG_NARGS() > 7)
            spi_exec("UPDATE leadscore.tracking SET columns_fingerprint = "
                     "leadscore.tracked_tables_fingerprint(activities, leads) WHERE model = $1",
                     {{TEXTOID, model}});
        qualified = "leadscore." + quote_ident(state_table);
        // No index but the key, so live updates can stay HOT (no index writes); refresh()
        // finds due rows with a sequential scan instead. Filled at 45% (below), so that a
        // statement can update every row of a page in place.
        if (distributed)
            citus::create_distributed_tables(model, state_table, key_type_name, activities_name, kStateFillFactor);
        else
            spi_exec("CREATE TABLE " + qualified + " (" + state_column(kStateLead).name + " " + key_type_name +
                         " PRIMARY KEY, CHECK (model = " + quote_literal(model) +
                         ")) INHERITS (leadscore.lead_state) WITH (fillfactor = " + std::to_string(kStateFillFactor) +
                         ")",
                     {});
        check_state_table(qualified, key_type);
        spi_exec("COMMENT ON TABLE " + qualified + " IS " +
                     quote_literal("leadscore per-lead state of model " + model + " (managed by leadscore.track)"),
                 {});
        const std::string prefix = trigger_prefix(state_table);
        if (distributed) citus::allow_triggers();
        create_triggers(prefix, activities_name, "activity_changed", model, distributed);
        for (const std::string& part : partitions_of(activities))
            create_triggers(prefix, part, "activity_changed", model);
        if (OidIsValid(leads)) {
            create_triggers(prefix, leads_name, "lead_changed", model, distributed);
            for (const std::string& part : partitions_of(leads)) create_triggers(prefix, part, "lead_changed", model);
        }
        if (replica) {
            set_replica_triggers(true, prefix, activities, "activity_changed", model);
            if (OidIsValid(leads)) set_replica_triggers(true, prefix, leads, "lead_changed", model);
        } else if (spi_exec("SELECT 1 FROM pg_catalog.pg_subscription_rel WHERE srrelid IN ($1, $2)",
                            {{OIDOID, std::to_string(activities)},
                             {OIDOID, std::to_string(OidIsValid(leads) ? leads : activities)}},
                            true) > 0) {
            ereport(NOTICE, (errmsg("leadscore: a tracked table of model \"%s\" is subscribed; with replica => false "
                                    "the changes its subscription applies are not scored",
                                    model.c_str()),
                             errhint("Call leadscore.set_replica('%s', true) to score them.", model.c_str())));
        }
    }
    invalidate_cache();
    sync_relation_triggers(model);
    if (distributed) {
        SpiConnection spi;
        citus::publish_model(model);
        citus::sync_views();
    }
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
    note_state_writer();
    const std::string model = text_arg(fcinfo, 0, "model");
    SpiConnection spi;
    if (spi_exec("SELECT activities::oid, leads::oid, state_table::text FROM leadscore.tracking WHERE model = $1",
                 {{TEXTOID, model}}, true) == 0)
        raise(sqlstate::kObjectNotInPrerequisiteState, "leadscore.untrack: model \"" + model + "\" is not tracked");
    const Oid activities = DatumGetObjectId(*spi_datum(0, 1));
    const auto leads = spi_datum(0, 2);
    const std::string state_table = *spi_text(0, 3);
    const std::string prefix = trigger_prefix(state_table);
    sync_relation_triggers(model, true);
    const bool distributed = citus::distribution_of(activities).has_value();
    if (distributed) citus::allow_triggers();
    const std::vector<std::string> activity_parts = partitions_of(activities);
    drop_triggers(prefix, relation_display_name(activities));
    for (const std::string& part : activity_parts) drop_triggers(prefix, part, true);
    if (leads) {
        const Oid leads_oid = DatumGetObjectId(*leads);
        const std::vector<std::string> lead_parts = partitions_of(leads_oid);
        drop_triggers(prefix, relation_display_name(leads_oid));
        for (const std::string& part : lead_parts) drop_triggers(prefix, part, true);
    }
    spi_exec("DELETE FROM leadscore.tracking WHERE model = $1", {{TEXTOID, model}});
    if (distributed) {
        // The views over distributed models' tables let go of this model's before they go.
        citus::sync_views();
        citus::unpublish_model(model);
        spi_exec("DROP TABLE IF EXISTS leadscore." + quote_ident(citus::history_table_of(state_table)), {});
    }
    spi_exec("DROP TABLE IF EXISTS leadscore." + quote_ident(state_table), {});
    spi_exec("DELETE FROM leadscore.stage_history WHERE model = $1", {{TEXTOID, model}});
    invalidate_cache();
    PG_RETURN_BOOL(true);
}

LEADSCORE_FUNCTION(leadscore_set_replica) {
    const std::string model = text_arg(fcinfo, 0, "model");
    if (PG_ARGISNULL(1)) raise(sqlstate::kInvalidParameterValue, "leadscore.set_replica: replica must not be NULL");
    const bool on = PG_GETARG_BOOL(1);
    SpiConnection spi;
    if (spi_exec("SELECT activities::oid, leads::oid, state_table::text, replica FROM leadscore.tracking "
                 "WHERE model = $1 FOR UPDATE",
                 {{TEXTOID, model}}, true) == 0)
        raise(sqlstate::kObjectNotInPrerequisiteState, "leadscore.set_replica: model \"" + model + "\" is not tracked",
              std::string(), "Attach it with leadscore.track(...) first.");
    const Oid activities = DatumGetObjectId(*spi_datum(0, 1));
    const auto leads = spi_datum(0, 2);
    const std::string prefix = trigger_prefix(*spi_text(0, 3));
    const bool previous = DatumGetBool(*spi_datum(0, 4));
    if (previous == on) PG_RETURN_BOOL(previous);
    if (on && citus::distribution_of(activities))
        raise(sqlstate::kFeatureNotSupported,
              "leadscore.set_replica: replica => true is not supported on Citus-distributed tables");
    set_replica_triggers(on, prefix, activities, "activity_changed", model);
    if (leads) set_replica_triggers(on, prefix, DatumGetObjectId(*leads), "lead_changed", model);
    spi_exec("UPDATE leadscore.tracking SET replica = $2 WHERE model = $1", {{TEXTOID, model}, {BOOLOID, on ? "true" : "false"}});
    sync_relation_triggers(model);
    PG_RETURN_BOOL(previous);
}
