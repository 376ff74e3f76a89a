// Related records (leadscore.relation): the triggers on a relation's target table rescore the
// leads that refer to changed rows, in the same transaction; sync_relation_triggers() keeps
// those triggers in step with the model's relations.
#include <set>

#include "pg/args.hpp"
#include "pg/matching.hpp"
#include "pg/model_cache.hpp"
#include "pg/recompute.hpp"
#include "pg/related.hpp"
#include "pg/relations.hpp"
#include "pg/spi.hpp"
#include "pg/state_store.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
}

namespace leadscore::pg {

namespace {

// Triggers of a model's relations are named after its state table and the relation.
std::string relation_trigger_prefix(const std::string& state_table) { return "leadscore_" + state_table + "_rel_"; }

}  // namespace

void sync_relation_triggers(const std::string& model, bool drop_all) {
    // Before ALTER EXTENSION UPDATE to 0.5.0 there are no relations.
    if (!OidIsValid(leadscore_relation_oid("relation"))) return;
    SpiConnection spi;
    if (spi_exec("SELECT state_table::text, replica FROM leadscore.tracking WHERE model = $1", {{TEXTOID, model}},
                 true) == 0)
        return;
    const std::string prefix = relation_trigger_prefix(*spi_text(0, 1));
    const bool replica = DatumGetBool(*spi_datum(0, 2));
    // Existing triggers of this model's relations, by name.
    spi_exec("SELECT t.tgname::text, t.tgrelid::regclass::text FROM pg_catalog.pg_trigger t WHERE NOT t.tgisinternal "
             "AND t.tgparentid = 0 AND t.tgfoid = 'leadscore.related_changed()'::pg_catalog.regprocedure "
             "AND starts_with(t.tgname::text, $1)",
             {{TEXTOID, prefix}}, true);
    std::vector<std::pair<std::string, std::string>> existing;
    for (std::uint64_t i = 0; i < SPI_processed; i++) existing.emplace_back(*spi_text(i, 1), *spi_text(i, 2));
    for (const auto& [name, table] : existing) spi_exec("DROP TRIGGER " + quote_ident(name) + " ON " + table, {});
    if (drop_all) return;
    spi_exec("SELECT name, target::oid, md5(name) FROM leadscore.relation WHERE model = $1 ORDER BY name",
             {{TEXTOID, model}}, true);
    std::vector<std::tuple<std::string, Oid, std::string>> relations;
    for (std::uint64_t i = 0; i < SPI_processed; i++)
        relations.emplace_back(*spi_text(i, 1), DatumGetObjectId(*spi_datum(i, 2)), spi_text(i, 3)->substr(0, 8));
    for (const auto& [name, target, hash] : relations) {
        const std::string table = relation_display_name(target);
        const std::string base = prefix + hash;
        const std::string args = "(" + quote_literal(model) + ", " + quote_literal(name) + ")";
        spi_exec("CREATE TRIGGER " + quote_ident(base + "_ins") + " AFTER INSERT ON " + table +
                     " REFERENCING NEW TABLE AS leadscore_new FOR EACH STATEMENT EXECUTE FUNCTION "
                     "leadscore.related_changed" + args,
                 {});
        spi_exec("CREATE TRIGGER " + quote_ident(base + "_upd") + " AFTER UPDATE ON " + table +
                     " REFERENCING OLD TABLE AS leadscore_old NEW TABLE AS leadscore_new FOR EACH STATEMENT "
                     "EXECUTE FUNCTION leadscore.related_changed" + args,
                 {});
        spi_exec("CREATE TRIGGER " + quote_ident(base + "_del") + " AFTER DELETE ON " + table +
                     " REFERENCING OLD TABLE AS leadscore_old FOR EACH STATEMENT EXECUTE FUNCTION "
                     "leadscore.related_changed" + args,
                 {});
        spi_exec("CREATE TRIGGER " + quote_ident(base + "_trunc") + " AFTER TRUNCATE ON " + table +
                     " FOR EACH STATEMENT EXECUTE FUNCTION leadscore.related_changed" + args,
                 {});
        if (!replica) continue;
        // Changes applied by logical replication fire only triggers enabled REPLICA, per row.
        spi_exec("CREATE TRIGGER " + quote_ident(base + "_row") + " AFTER INSERT OR UPDATE OR DELETE ON " + table +
                     " FOR EACH ROW EXECUTE FUNCTION leadscore.related_changed" + args,
                 {});
        spi_exec("ALTER TABLE " + table + " ENABLE REPLICA TRIGGER " + quote_ident(base + "_row"), {});
        spi_exec("CREATE TRIGGER " + quote_ident(base + "_rtrunc") + " AFTER TRUNCATE ON " + table +
                     " FOR EACH STATEMENT EXECUTE FUNCTION leadscore.related_changed" + args,
                 {});
        spi_exec("ALTER TABLE " + table + " ENABLE REPLICA TRIGGER " + quote_ident(base + "_rtrunc"), {});
    }
}

namespace {

// Keys (text) of the target rows a statement changed in a way rules can see: the key or a
// column some rule reads as relation.column.
std::vector<std::string> changed_target_keys(TriggerData* trig, const RelationInfo& rel,
                                             const std::vector<std::string>& columns) {
    TupleDesc desc = RelationGetDescr(trig->tg_relation);
    const int key_att = find_attribute(desc, rel.target_key);
    if (key_att == 0) return {};
    std::vector<int> atts;
    for (const std::string& c : columns)
        if (int a = find_attribute(desc, c)) atts.push_back(a);
    const TextOutput key_text(TupleDescAttr(desc, key_att - 1)->atttypid);
    std::set<std::string> keys;
    // A row of the statement: its key and the text of the columns rules read.
    auto row_image = [&](Datum* values, bool* nulls, std::string& key, std::string& image) {
        key.clear();
        image.clear();
        pg_guard([&] {
            if (!nulls[key_att - 1]) key_text.write(values[key_att - 1], key);
            for (int a : atts) {
                if (nulls[a - 1]) {
                    image += '\x01';
                    continue;
                }
                char* s = key_to_cstring(values[a - 1], TupleDescAttr(desc, a - 1)->atttypid);
                image += s;
                image += '\x02';
                pfree(s);
            }
        });
    };
    std::vector<std::pair<std::string, std::string>> old_rows;
    std::string key, image;
    if (!TRIGGER_FIRED_BY_INSERT(trig->tg_event))
        scan_trigger(trig, true, desc, [&](Datum* values, bool* nulls) {
            row_image(values, nulls, key, image);
            old_rows.emplace_back(key, image);
        });
    if (TRIGGER_FIRED_BY_DELETE(trig->tg_event)) {
        for (const auto& r : old_rows) keys.insert(r.first);
    } else {
        std::size_t i = 0;
        scan_trigger(trig, false, desc, [&](Datum* values, bool* nulls) {
            row_image(values, nulls, key, image);
            // Old and new rows of an UPDATE come in the same order: an unchanged row needs nothing.
            const bool same = i < old_rows.size() && old_rows[i].first == key && old_rows[i].second == image;
            if (!same) {
                keys.insert(key);
                if (i < old_rows.size()) keys.insert(old_rows[i].first);
            }
            i++;
        });
    }
    keys.erase(std::string());
    return std::vector<std::string>(keys.begin(), keys.end());
}

}  // namespace

}  // namespace leadscore::pg

using namespace leadscore;
using namespace leadscore::pg;

LEADSCORE_FUNCTION(leadscore_related_changed) {
    TriggerData* trig = live_trigger_arg(fcinfo, "leadscore.related_changed()");
    if (trig->tg_trigger->tgnargs != 2)
        raise(sqlstate::kObjectNotInPrerequisiteState,
              "leadscore.related_changed() needs the model and relation names as arguments");
    const InvokerTrigger invoker(fcinfo);
    const std::string model = trig->tg_trigger->tgargs[0];
    const std::string relation = trig->tg_trigger->tgargs[1];
    std::shared_ptr<CompiledModel> cm = get_model(model, true);
    const RelationInfo* rel = nullptr;
    for (const RelationInfo& r : cm->relations)
        if (r.name == relation) rel = &r;
    if (!rel || !OidIsValid(cm->tracking->leads)) return PointerGetDatum(nullptr);
    // The related columns rules read; a relation no rule reads costs nothing.
    std::vector<std::string> columns;
    for (const ColumnBinding& c : cm->lead_matcher->columns)
        if (c.name.rfind(relation + ".", 0) == 0) columns.push_back(c.name.substr(relation.size() + 1));
    if (columns.empty()) return PointerGetDatum(nullptr);
    const TrackingInfo& t = *cm->tracking;
    std::vector<std::string> leads;
    {
        SpiConnection spi;
        StateStore store(*cm);
        if (TRIGGER_FIRED_FOR_ROW(trig->tg_event)) store.lock_replica_writer();
        store.lock_for_write();
        std::string sql = "SELECT l." + quote_ident(t.lead_key) + "::text FROM " + t.leads_name + " l WHERE l." +
                          quote_ident(rel->lead_column);
        std::vector<SqlArg> args;
        if (TRIGGER_FIRED_BY_TRUNCATE(trig->tg_event)) {
            store.lock_related_keys(rel->name, nullptr);
            sql += " IS NOT NULL";
        } else {
            const std::vector<std::string> keys = changed_target_keys(trig, *rel, columns);
            if (keys.empty()) return PointerGetDatum(nullptr);
            // Leads joining or leaving these rows meanwhile wait for us, or we see them.
            store.lock_related_keys(rel->name, &keys);
            Oid key_type = InvalidOid;
            pg_guard([&] { key_type = get_atttype(rel->target, get_attnum(rel->target, rel->target_key.c_str())); });
            sql += " = ANY($1::text[]::" + type_name(key_type) + "[])";
            args.push_back(SqlArg{TEXTARRAYOID, key_array_literal(keys)});
        }
        spi_exec(sql, args, true);
        for (std::uint64_t i = 0; i < SPI_processed; i++) leads.push_back(*spi_text(i, 1));
    }
    resync_leads(cm, leads);
    return PointerGetDatum(nullptr);
}
