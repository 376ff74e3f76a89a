// The module: PG_MODULE_MAGIC, _PG_init (settings, cache callbacks, Citus commit notifications).
#include "pg/commit_notify.hpp"
#include "pg/model_cache.hpp"
#include "pg/settings.hpp"

extern "C" {
#include "utils/guc.h"

PG_MODULE_MAGIC;

void _PG_init(void);

void _PG_init(void) {
    DefineCustomIntVariable(
        "leadscore.batch_occurrences",
        "Matched activity occurrences a statement gathers before it applies them to stored state.",
        "At least this many, and at least 16 per distinct lead gathered: memory is bounded by the statement's "
        "leads, not its rows (16 bytes per occurrence).",
        &leadscore::pg::batch_occurrences, 1 << 18, 1, INT_MAX, PGC_USERSET, 0, nullptr, nullptr, nullptr);
    DefineCustomBoolVariable(
        "leadscore.notify_on_commit",
        "Citus: a transaction that wrote through the coordinator notifies the stage changes its shards recorded.",
        "Just before it commits, when a shard said it recorded some (and after a COPY). Off, or in sessions "
        "that do not load leadscore: they wait for leadscore.notify_stage_changes().",
        &leadscore::pg::notify_on_commit, true, PGC_USERSET, 0, nullptr, nullptr, nullptr);
    MarkGUCPrefixReserved("leadscore");
    leadscore::pg::register_cache_callbacks();
    leadscore::pg::register_commit_notify();
}
}

namespace leadscore::pg {
int batch_occurrences = 1 << 18;
}
