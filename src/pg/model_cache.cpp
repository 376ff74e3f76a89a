// The per-backend cache of compiled models. Invalidation callbacks only mark it stale; the
// next get_model() reloads and frees the models no caller holds any more, at a point where
// freeing plans and memory contexts is safe.
#include <unordered_map>
#include <unordered_set>

#include "pg/citus.hpp"
#include "pg/model_cache.hpp"
#include "pg/relations.hpp"
#include "pg/rights.hpp"
#include "pg/rule_loading.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
}

namespace leadscore::pg {

namespace {

// Backend-lifetime objects are never destroyed: no C++ static destructors run at exit.
struct ModelCache {
    std::unordered_map<std::string, std::shared_ptr<CompiledModel>> models;
    // Models dropped from the cache that a caller (a running trigger, an aggregate's call
    // site) may still hold; freed once the cache holds the last reference.
    std::vector<std::shared_ptr<CompiledModel>> retired;
    // Relations whose change (rule edits, DDL on tracked tables) makes the cache stale.
    std::unordered_set<Oid> watched;
    bool valid = true;
    bool callbacks_registered = false;
    std::uint64_t generation = 0;
};
ModelCache& g = *new ModelCache();

void mark_invalid() {
    g.valid = false;
    g.generation++;
}

// The safe point: drops stale models and frees those nobody uses.
void sweep() {
    if (!g.valid) {
        for (auto& [name, cm] : g.models) g.retired.push_back(std::move(cm));
        g.models.clear();
        g.valid = true;
    }
    for (std::size_t i = 0; i < g.retired.size();) {
        if (g.retired[i].use_count() == 1) {
            g.retired[i] = std::move(g.retired.back());
            g.retired.pop_back();
        } else {
            i++;
        }
    }
}

// Callbacks run inside PostgreSQL (cxx_guard): they only mark the cache stale.
void relcache_callback(Datum, Oid relid) {
    cxx_guard(WARNING, [relid] {
        if (relid == InvalidOid || g.watched.count(relid)) mark_invalid();
    });
}

void xact_callback(XactEvent event, void*) {
    if (event != XACT_EVENT_ABORT && event != XACT_EVENT_PARALLEL_ABORT) return;
    cxx_guard(WARNING, [] {
        mark_invalid();
        reset_invoker_state();
    });
}

void subxact_callback(SubXactEvent event, SubTransactionId, SubTransactionId, void*) {
    if (event == SUBXACT_EVENT_ABORT_SUB) cxx_guard(WARNING, [] { mark_invalid(); });
}

void watch_rule_tables() {
    static const char* const kTables[] = {"model", "activity_rule", "fit_rule", "stage", "list_entry", "tracking"};
    for (const char* t : kTables) {
        const Oid oid = leadscore_relation_oid(t);
        if (OidIsValid(oid)) g.watched.insert(oid);
    }
}

// A distributed model from this node's copy (nullptr: none); a change of the copy drops it.
std::unique_ptr<CompiledModel> load_copy(const std::string& name) {
    Oid placement = InvalidOid;
    const std::optional<std::string> tables = citus::published_model(name, &placement);
    if (!tables) return nullptr;
    if (OidIsValid(placement)) g.watched.insert(placement);
    return load_published_model(name, *tables);
}

// A distributed model on a Citus worker (the aggregate's pushed-down work): its copy.
std::unique_ptr<CompiledModel> load_published_if_remote(const std::string& name) {
    if (!citus::loaded() ||
        spi_exec("SELECT 1 FROM leadscore.model WHERE name = $1", {{TEXTOID, name}}, true) > 0)
        return nullptr;
    return load_copy(name);
}

std::shared_ptr<CompiledModel> load_and_watch(const std::string& name, const std::string& tables_from) {
    watch_rule_tables();
    SpiConnection spi;
    std::unique_ptr<CompiledModel> published = name == tables_from ? load_published_if_remote(name) : nullptr;
    std::shared_ptr<CompiledModel> cm(published ? std::move(published) : load_model(name, tables_from));
    if (cm->tracking) {
        g.watched.insert(cm->tracking->activities);
        if (OidIsValid(cm->tracking->leads)) g.watched.insert(cm->tracking->leads);
    }
    return cm;
}

}  // namespace

CompiledModel::~CompiledModel() {
    for (auto& [sql, plan] : plans) {
        try {
            pg_guard([&] { SPI_freeplan(plan); });
        } catch (...) {
        }
    }
    if (context) MemoryContextDelete(context);
}

SPIPlanPtr cached_plan(CompiledModel& cm, const std::string& sql, const std::vector<Oid>& types) {
    auto it = cm.plans.find(sql);
    if (it != cm.plans.end()) return it->second;
    const bool distributed = cm.tracking && cm.tracking->distributed && !cm.tracking->on_shard;
    SPIPlanPtr plan = prepare_kept_plan(sql, types, distributed);
    cm.plans.emplace(sql, plan);
    return plan;
}

std::shared_ptr<CompiledModel> get_model(const std::string& name, bool require_tracked) {
    sweep();
    std::shared_ptr<CompiledModel> cm;
    if (auto it = g.models.find(name); it != g.models.end()) {
        cm = it->second;
    } else {
        cm = load_and_watch(name, name);
        g.models[name] = cm;
    }
    if (require_tracked && !cm->tracking)
        raise(sqlstate::kObjectNotInPrerequisiteState, "leadscore model \"" + name + "\" is not tracked",
              std::string(), "Attach it to the CRM's tables with leadscore.track(...).");
    return cm;
}

namespace {

// Puts one node's co-located shards in place of a distributed model's tables.
void localize(CompiledModel& cm, const citus::Shard& shard) {
    TrackingInfo& t = *cm.tracking;
    auto shard_oid = [&](Oid logical) {
        const std::string name = citus::colocated_shard_name(logical, shard);
        Oid oid = InvalidOid;
        pg_guard([&] { oid = get_relname_relid(name.c_str(), get_rel_namespace(logical)); });
        return oid;
    };
    t.on_shard = true;
    t.activities = shard_oid(t.activities);
    t.activities_name = relation_display_name(t.activities);
    if (OidIsValid(t.leads)) {
        t.leads = shard_oid(t.leads);
        t.leads_name = relation_display_name(t.leads);
    }
    t.state_shell = leadscore_relation_oid(t.state_table.c_str());
    const Oid history = leadscore_relation_oid(citus::history_table_of(t.state_table).c_str());
    t.state_table = citus::colocated_shard_name(t.state_shell, shard);
    t.history_table = "leadscore." + quote_ident(citus::colocated_shard_name(history, shard));
}

}  // namespace

std::shared_ptr<CompiledModel> get_model_for_trigger(const std::string& name, Oid relid) {
    sweep();
    const std::optional<citus::Shard> shard = citus::shard_of(relid);
    if (!shard) return get_model(name, true);
    const std::string cache_key = name + "\x1f#" + std::to_string(relid);
    if (auto it = g.models.find(cache_key); it != g.models.end()) return it->second;
    watch_rule_tables();
    SpiConnection spi;
    std::shared_ptr<CompiledModel> cm(load_copy(name));
    if (!cm)
        raise(sqlstate::kObjectNotInPrerequisiteState,
              "leadscore model \"" + name + "\" is not tracked on this Citus cluster", std::string(),
              "Track it on the coordinator with leadscore.track(...).");
    if (!cm->tracking)
        raise(sqlstate::kObjectNotInPrerequisiteState, "leadscore model \"" + name + "\" is not tracked");
    localize(*cm, *shard);
    g.models[cache_key] = cm;
    return cm;
}

std::shared_ptr<CompiledModel> get_model_on_tables(const std::string& name, const std::string& tables_from) {
    if (tables_from == name) return get_model(name, true);
    sweep();
    const std::string cache_key = name + "\x1f@" + tables_from;
    if (auto it = g.models.find(cache_key); it != g.models.end()) return it->second;
    std::shared_ptr<CompiledModel> cm = load_and_watch(name, tables_from);
    if (!cm->tracking)
        raise(sqlstate::kObjectNotInPrerequisiteState, "leadscore model \"" + tables_from + "\" is not tracked",
              std::string(), "Name a tracked model whose tables the draft model is scored on.");
    g.models[cache_key] = cm;
    return cm;
}

std::vector<std::string> tracked_models() {
    SpiConnection spi;
    spi_exec("SELECT model FROM leadscore.tracking ORDER BY model", {}, true);
    std::vector<std::string> out;
    for (std::uint64_t i = 0; i < SPI_processed; i++) out.push_back(*spi_text(i, 1));
    return out;
}

void invalidate_cache() { mark_invalid(); }

void watch_relation(Oid relid) { g.watched.insert(relid); }

std::uint64_t cache_generation() { return g.generation; }

void register_cache_callbacks() {
    if (g.callbacks_registered) return;
    CacheRegisterRelcacheCallback(relcache_callback, (Datum)0);
    RegisterXactCallback(xact_callback, nullptr);
    RegisterSubXactCallback(subxact_callback, nullptr);
    g.callbacks_registered = true;
}

}  // namespace leadscore::pg
