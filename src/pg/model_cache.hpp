// The per-backend cache of compiled models and its invalidation (pg_cron's pattern: callbacks
// only mark the cache invalid; the next use reloads).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "pg/compiled_model.hpp"

namespace leadscore::pg {

// The compiled model, from the cache or freshly loaded. Throws when the model does not
// exist, or when require_tracked and it is not tracked.
std::shared_ptr<CompiledModel> get_model(const std::string& name, bool require_tracked);
// The model a live trigger on this relation scores with: the tracked model, or on a Citus node
// the distributed model's copy with that node's co-located shards in place of its tables.
std::shared_ptr<CompiledModel> get_model_for_trigger(const std::string& name, Oid relid);
// A model (possibly an untracked draft) scored on the tables another model tracks.
std::shared_ptr<CompiledModel> get_model_on_tables(const std::string& name, const std::string& tables_from);
// Names of all tracked models.
std::vector<std::string> tracked_models();
// Marks every cached model stale in this backend (the next get_model reloads).
void invalidate_cache();
// Marks the cache stale whenever this relation changes.
void watch_relation(Oid relid);
// Changes whenever cached rules may be stale (rule edits committed elsewhere, DDL, aborts).
std::uint64_t cache_generation();
// Relcache and (sub)transaction callbacks; called once from _PG_init.
void register_cache_callbacks();

}  // namespace leadscore::pg
