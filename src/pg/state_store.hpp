// The state store of one tracked model: per-lead locks and the state table's rows, read and
// written through SQL (the SQL path) or directly through the table AM and its key index
// (the activity trigger's direct path, state_direct.cpp); stage history and NOTIFY.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/deltas.hpp"
#include "pg/compiled_model.hpp"
#include "pg/state_row.hpp"

extern "C" {
#include "access/skey.h"
}

namespace leadscore::pg {

// Stage changes that still need their history rows and notifications.
struct StageChange {
    std::string key;
    std::optional<std::string> from, to;
    MicroPoints score = 0;
};

// State table operations for one tracked model. All but apply_deltas_directly need SPI.
class StateStore {
public:
    explicit StateStore(CompiledModel& cm);
    // Takes the state table lock writers use (row exclusive), processing invalidations.
    void lock_for_write();
    // Serializes the row-by-row writers of replicated changes (see state_store.cpp).
    void lock_replica_writer();
    // Per-(model, lead) transaction locks shared by the lead and activity triggers.
    void lock_keys(const std::vector<std::string>& keys);
    // Per-(model, relation, related key) transaction locks shared by the triggers on a relation's
    // target and the lead triggers (keys: the related keys' text; null: every key). Taken
    // before lock_keys.
    void lock_related_keys(const std::string& relation, const std::vector<std::string>* keys);
    // Blocks every writer of this model until commit (rule changes, rescore).
    void lock_exclusive();
    // Inserts placeholder rows for keys that have none (only leads present in the leads
    // table when one is tracked); in key order.
    void create_placeholders(const std::vector<std::string>& keys, Timestamp as_of);
    // Locks and reads the rows of the given keys (all rows when keys is null), in key order;
    // unlocked, in no particular order.
    std::vector<StoredState> lock_and_read(const std::vector<std::string>* keys, bool lock = true);
    // The same rows unlocked, in no order, handed to on_batch a cursor batch at a time: memory
    // holds one batch's summaries, not every lead's. Without summaries (with_summary false),
    // a row's summary is left empty and initialized says whether it has one.
    using Batch = std::function<void(std::vector<StoredState>&)>;
    void read_each(const std::vector<std::string>* keys, const Batch& on_batch, bool with_summary = true);
    std::vector<StoredState> read_due(Timestamp as_of);
    // Upserts the leads' new states (summaries in their stored form) and records their stage changes.
    void write(const std::vector<NewState>& states, Timestamp as_of, bool notify);
    // Sets leads' result columns alone, their summaries staying as stored, and records their
    // stage changes (as of as_of): an edit that changes no summary. scored_at: the time the
    // results are as of (nullopt: each row's own, kept).
    void write_results(const std::vector<NewState>& states, Timestamp as_of, std::optional<Timestamp> scored_at);
    // Inserts stage history rows and sends the notifications (stage_history.cpp).
    void record_stage_changes(const std::vector<StageChange>& changes, Timestamp as_of, bool notify);
    // A distributed model, on the coordinator: sends the notifications of the stage changes
    // recorded on the shards that have not been sent, in the order they happened, and marks
    // them sent (in this transaction). Returns how many. only_if_any: looks before it writes;
    // leads: only these leads' changes.
    std::int64_t notify_pending_changes(bool only_if_any = false, const std::vector<std::string>* leads = nullptr);
    // The activity trigger's direct path: applies the deltas of keys whose state row exists and
    // holds a consistent summary, through the table AM and the key index (no SQL, no SPI).
    // Needs grouped deltas. Returns the keys left for the SQL path; appends stage changes to record.
    std::vector<std::string> apply_deltas_directly(const DeltaMap& deltas, Timestamp as_of,
                                                   std::vector<StageChange>& stage_changes);
    // What a pass over stored rows does with one row: keep it, write the new state's result
    // columns (scored_at as of the pass, or kept), write them and its summary, or leave the
    // row to the caller's SQL path (a summary to rebuild from raw rows).
    enum class PassVerdict { Keep, WriteResults, WriteResultsKeepScoredAt, WriteWhole, Defer };
    // decide: the verdict on a stored row (its summary decoded when with_summary; otherwise
    // empty, and initialized says whether it has one), with the new state in `out`.
    using PassDecide = std::function<PassVerdict(StoredState& stored, NewState& out)>;
    // A rule edit's pass over the rows of keys (every row when null), through the table AM
    // and the key index, no SQL: each row read, decided and written in place; stage changes
    // recorded and notified. The caller holds lock_exclusive(); not on a distributed model's
    // coordinator. Returns the deferred keys.
    std::vector<std::string> rewrite_each(const std::vector<std::string>* keys, bool with_summary,
                                          const PassDecide& decide, Timestamp as_of);
    void remove(const std::vector<std::string>& keys);
    void remove_absent_leads(const std::vector<std::string>* keys);
    Oid relid() const { return relid_; }

    // A distributed model's state seen from the coordinator: the table is sharded over nodes.
    bool coordinates_shards() const { return cm_.tracking->distributed && !cm_.tracking->on_shard; }

private:
    // The model's part of the advisory lock tags its writers take.
    std::uint32_t model_lock_id() const;
    std::vector<StoredState> read_rows(const std::string& where, const std::vector<Oid>& types,
                                       std::vector<Datum>& args, bool with_summary = true,
                                       const Batch* on_batch = nullptr);
    // The key index's scan key for these keys (an array key for more than one); key_values
    // holds the keys' Datums (reserved by the caller for keys.size()). Plain PostgreSQL code:
    // call inside pg_guard.
    void key_scan_key(Relation rel, Relation index, const std::vector<std::string>& keys,
                      std::vector<Datum>& key_values, ScanKeyData& skey);
    // WHERE clause and arguments for the given keys (all rows when null).
    std::string key_filter(const std::vector<std::string>* keys, std::vector<Oid>& types, std::vector<Datum>& args);
    CompiledModel& cm_;
    std::string table_;
    Oid relid_ = InvalidOid;
};

// A summary as it is stored when scored as of as_of: without what has expired for good.
Summary stored_summary(const Model& model, Summary summary, Timestamp as_of);

}  // namespace leadscore::pg
