// The state store's SQL path: per-lead locks, placeholders, reads and upserts of state rows.
#include <algorithm>

#include "core/decimal.hpp"
#include "pg/datum.hpp"
#include "pg/model_cache.hpp"
#include "pg/spi.hpp"
#include "pg/state_store.hpp"

extern "C" {
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "utils/lsyscache.h"
}

namespace leadscore::pg {

Summary stored_summary(const Model& model, Summary summary, Timestamp as_of) {
    prune_expired(model, summary, as_of);
    return summary;
}

StateStore::StateStore(CompiledModel& cm) : cm_(cm) {
    if (cm.state_table_sql.empty()) cm.state_table_sql = "leadscore." + quote_ident(cm.tracking->state_table);
    table_ = cm.state_table_sql;
    if (OidIsValid(cm.state_relid)) {
        relid_ = cm.state_relid;
        return;
    }
    const std::string name = cm.tracking->state_table;
    pg_guard([&] {
        relid_ = get_relname_relid(name.c_str(), get_namespace_oid("leadscore", false));
        if (!OidIsValid(relid_))
            ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE),
                            errmsg("leadscore: state table of model \"%s\" is missing", cm.tracking->model.c_str()),
                            errhint("Run leadscore.untrack() and leadscore.track() again.")));
    });
    cm.state_relid = relid_;
    watch_relation(relid_);
}

std::uint32_t StateStore::model_lock_id() const {
    // On a Citus node, one distributed statement writes several shards at once, each from its
    // own session of the same transaction: their locks must never meet (a lead has one shard).
    const std::string scope =
        cm_.tracking->on_shard ? cm_.tracking->model + '\x1f' + cm_.tracking->state_table : cm_.tracking->model;
    return static_cast<std::uint32_t>(std::hash<std::string>{}(scope));
}

namespace {

// Locks in bucket order bound what a big statement takes from the small shared lock table.
constexpr std::uint32_t kLockBuckets = 256;

std::uint32_t lock_bucket(const std::string& key) {
    return static_cast<std::uint32_t>(std::hash<std::string>{}(key) % kLockBuckets);
}

// Takes the exclusive advisory locks (model, bucket, lock class) of these buckets, in order.
void lock_buckets(std::uint32_t model_hash, std::vector<std::uint32_t> buckets, std::uint16_t lock_class) {
    std::sort(buckets.begin(), buckets.end());
    buckets.erase(std::unique(buckets.begin(), buckets.end()), buckets.end());
    pg_guard([&] {
        for (std::uint32_t b : buckets) {
            LOCKTAG tag;
            SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, model_hash, b, lock_class);
            (void)LockAcquire(&tag, ExclusiveLock, false, false);
        }
    });
}

// Some result columns of many states as one array each: the parameters of a batched write.
// The buffers are C++ objects made outside pg_guard; encode runs inside it.
struct ResultArrays {
    ResultArrays(std::vector<int> result_columns, std::size_t n)
        : columns(std::move(result_columns)),
          values(columns.size(), std::vector<Datum>(n)),
          nulls(columns.size(), std::vector<bool>(n)) {}
    // One array Datum per column into out, in the current memory context. summaries: each
    // state's stored summary bytes (null when the summary column is not written).
    void encode(const std::vector<NewState>& states, const std::vector<std::string>* summaries, Timestamp as_of,
                Datum* out) {
        static const std::string no_summary;
        for (std::size_t i = 0; i < states.size(); i++) {
            encode_results(states[i], summaries ? (*summaries)[i] : no_summary, as_of, row);
            for (std::size_t c = 0; c < columns.size(); c++) {
                values[c][i] = row.values[columns[c]];
                nulls[c][i] = row.nulls[columns[c]];
            }
        }
        for (std::size_t c = 0; c < columns.size(); c++)
            out[c] = build_array(state_column(columns[c]).type, values[c], nulls[c]);
    }
    std::vector<int> columns;
    std::vector<std::vector<Datum>> values;
    std::vector<std::vector<bool>> nulls;
    StateDatums row;
};

}  // namespace

void StateStore::lock_keys(const std::vector<std::string>& keys) {
    // A lead's row and its first activities can arrive in two concurrent transactions that
    // cannot see each other; both sides meet on a per-(model, key bucket) lock.
    if (!OidIsValid(cm_.tracking->leads) || keys.empty()) return;
    std::vector<std::uint32_t> buckets;
    buckets.reserve(std::min<std::size_t>(keys.size(), kLockBuckets));
    for (const std::string& k : keys) buckets.push_back(lock_bucket(k));
    lock_buckets(model_lock_id(), std::move(buckets), 3);
}

void StateStore::lock_related_keys(const std::string& relation, const std::vector<std::string>* keys) {
    // A lead that starts (or stops) referring to a related row, and a change of that row, meet
    // here before either reads the other: per-(model, relation, key bucket), always before the
    // leads' own locks.
    std::vector<std::uint32_t> buckets;
    if (!keys) {
        for (std::uint32_t b = 0; b < kLockBuckets; b++) buckets.push_back(b);
    } else {
        for (const std::string& k : *keys) buckets.push_back(lock_bucket(relation + '\x1f' + k));
    }
    lock_buckets(model_lock_id(), std::move(buckets), 5);
}

void StateStore::lock_replica_writer() {
    // Changes applied by logical replication fire row triggers: a transaction then takes its
    // bucket locks row by row, in no common order, so the apply and table-sync workers of a
    // model would deadlock on them. They take turns on a lock of their own first.
    const std::uint32_t model_hash = model_lock_id();
    pg_guard([&] {
        LOCKTAG tag;
        SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, model_hash, 0, 4);
        (void)LockAcquire(&tag, ExclusiveLock, false, false);
    });
}

void StateStore::lock_for_write() {
    // The coordinator of a distributed model cannot lock rows on many shards (no FOR UPDATE
    // across shards): it keeps the shards' writers out instead.
    if (coordinates_shards()) return lock_exclusive();
    // On a Citus node, the coordinator's LOCK TABLE of the distributed state table reaches
    // this node's relation of it, not its shards.
    const Oid shell = cm_.tracking->state_shell;
    pg_guard([&] {
        if (OidIsValid(shell)) LockRelationOid(shell, RowExclusiveLock);
        LockRelationOid(relid_, RowExclusiveLock);
    });
}

void StateStore::lock_exclusive() {
    // A distributed state table: Citus takes the lock on every node, where shard writers wait.
    if (coordinates_shards()) {
        SpiConnection spi;
        spi_exec("LOCK TABLE " + table_ + " IN SHARE ROW EXCLUSIVE MODE", {});
        return;
    }
    const Oid shell = cm_.tracking->state_shell;
    pg_guard([&] {
        if (OidIsValid(shell)) LockRelationOid(shell, ShareRowExclusiveLock);
        LockRelationOid(relid_, ShareRowExclusiveLock);
    });
}

void StateStore::create_placeholders(const std::vector<std::string>& keys, Timestamp as_of) {
    if (keys.empty()) return;
    const TrackingInfo& t = *cm_.tracking;
    std::string sql = "INSERT INTO " + table_ +
                      " (lead, model, lead_id, scored_at, stage_since) SELECT k.lead, $2, k.lead::text, $3, $3 "
                      "FROM unnest($1::" + t.key_type_name + "[]) AS k(lead)";
    if (OidIsValid(t.leads))
        sql += " WHERE EXISTS (SELECT 1 FROM " + t.leads_name + " l WHERE l." + quote_ident(t.lead_key) + " = k.lead)";
    sql += " ORDER BY k.lead ON CONFLICT (lead) DO NOTHING";
    SPIPlanPtr plan = cached_plan(cm_, sql, {TEXTARRAYOID, TEXTOID, TIMESTAMPTZOID});
    std::vector<Datum> args(3);
    std::vector<char> nulls(3, ' ');
    pg_guard([&] {
        args[0] = text_array_datum(keys);
        args[1] = text_datum(t.model);
        args[2] = TimestampTzGetDatum(as_of);
    });
    spi_exec_plan(plan, args, nulls);
}

std::vector<StoredState> StateStore::read_rows(const std::string& where, const std::vector<Oid>& types,
                                               std::vector<Datum>& args, bool with_summary, const Batch* on_batch) {
    // Without summaries, the last column says only whether the row has one.
    std::string columns = state_column_names(0);
    if (!with_summary)
        columns = columns.substr(0, columns.rfind(state_column(kStateSummary).name)) + "summary IS NOT NULL";
    const std::string sql = "SELECT " + columns + " FROM " + table_ + where;
    std::vector<char> nulls(args.size(), ' ');
    std::vector<StoredState> rows;
    StateDatums row;
    StateFields fields;
    bool has_summary = false;
    MemoryContext per_row = nullptr;
    pg_guard([&] { per_row = AllocSetContextCreate(CurrentMemoryContext, "leadscore state read", ALLOCSET_SMALL_SIZES); });
    // A batch at a time: all rows at once would hold every summary twice (tuples and parsed).
    Portal portal = open_plan_cursor(cached_plan(cm_, sql, types), args, nulls);
    while (const std::uint64_t n = fetch_batch(portal)) {
        SPITupleTable* table = SPI_tuptable;
        for (std::uint64_t i = 0; i < n; i++) {
            pg_guard([&] {
                MemoryContextReset(per_row);
                MemoryContext old = MemoryContextSwitchTo(per_row);
                for (int c = 0; c < kStateColumnCount; c++)
                    row.values[c] = SPI_getbinval(table->vals[i], table->tupdesc, c + 1, &row.nulls[c]);
                if (!with_summary) {
                    has_summary = DatumGetBool(row.values[kStateSummary]);
                    row.nulls[kStateSummary] = true;
                }
                read_state_fields(row, StateFieldsNeeded::All, fields);
                MemoryContextSwitchTo(old);
            });
            rows.emplace_back();
            parse_state_fields(row, fields, StateFieldsNeeded::All, rows.back());
            if (!with_summary) rows.back().initialized = has_summary;
        }
        pg_guard([&] { SPI_freetuptable(table); });
        if (on_batch) {
            (*on_batch)(rows);
            rows.clear();
        }
    }
    close_cursor(portal);
    pg_guard([&] { MemoryContextDelete(per_row); });
    return rows;
}

std::string StateStore::key_filter(const std::vector<std::string>* keys, std::vector<Oid>& types,
                                   std::vector<Datum>& args) {
    if (!keys) return std::string();
    types.push_back(TEXTARRAYOID);
    args.resize(1);
    pg_guard([&] { args[0] = text_array_datum(*keys); });
    return " WHERE lead = ANY($1::" + cm_.tracking->key_type_name + "[])";
}

void StateStore::read_each(const std::vector<std::string>* keys, const Batch& on_batch, bool with_summary) {
    if (keys && keys->empty()) return;
    std::vector<Oid> types;
    std::vector<Datum> args;
    const std::string where = key_filter(keys, types, args);
    read_rows(where, types, args, with_summary, &on_batch);
}

std::vector<StoredState> StateStore::lock_and_read(const std::vector<std::string>* keys, bool lock) {
    if (keys && keys->empty()) return {};
    std::vector<Oid> types;
    std::vector<Datum> args;
    std::string where = key_filter(keys, types, args);
    // Key order is the lock order; an unlocked read skips sorting wide rows.
    if (lock) where += " ORDER BY lead";
    // (The coordinator of a distributed model holds the exclusive lock instead.)
    if (lock && !coordinates_shards()) where += " FOR UPDATE";
    return read_rows(where, types, args);
}

std::vector<StoredState> StateStore::read_due(Timestamp as_of) {
    std::vector<Datum> args = {TimestampTzGetDatum(as_of)};
    return read_rows(std::string(" WHERE next_change <= $1 ORDER BY lead") + (coordinates_shards() ? "" : " FOR UPDATE"),
                     {TIMESTAMPTZOID}, args);
}

void StateStore::write(const std::vector<NewState>& states, Timestamp as_of, bool notify) {
    if (states.empty()) return;
    const TrackingInfo& t = *cm_.tracking;
    // One array argument per result column, after the model ($1) and the keys ($2).
    std::string params, updates;
    std::vector<Oid> types = {TEXTOID, TEXTARRAYOID};
    for (int c = kFirstResultColumn; c < kStateColumnCount; c++) {
        types.push_back(state_column(c).array_type);
        params += ", $" + std::to_string(types.size());
        if (c > kFirstResultColumn) updates += ", ";
        updates += std::string(state_column(c).name) + " = excluded." + state_column(c).name;
    }
    const std::string sql = "INSERT INTO " + table_ + " AS s (lead, model, lead_id, " +
                            state_column_names(kFirstResultColumn) + ") SELECT u.lead_id::" + t.key_type_name +
                            ", $1, u.lead_id, " + state_column_names(kFirstResultColumn, "u.") + " FROM unnest($2" +
                            params + ") AS u(lead_id, " + state_column_names(kFirstResultColumn) +
                            ") ORDER BY 1 ON CONFLICT (lead) DO UPDATE SET " + updates;
    SPIPlanPtr plan = cached_plan(cm_, sql, types);
    const std::size_t n = states.size();
    std::vector<std::string> summaries;
    summaries.reserve(n);
    for (const NewState& s : states) summaries.push_back(stored_summary(*cm_.model, s.summary, as_of).serialize());
    // Out here: an ERROR inside pg_guard longjmps past the lambda's frame.
    std::vector<std::string> keys;
    keys.reserve(n);
    for (const NewState& s : states) keys.push_back(s.key);
    std::vector<int> columns;
    for (int c = kFirstResultColumn; c < kStateColumnCount; c++) columns.push_back(c);
    ResultArrays arrays(std::move(columns), n);
    std::vector<Datum> args(types.size());
    std::vector<char> arg_nulls(types.size(), ' ');
    MemoryContext scratch = nullptr;
    pg_guard([&] {
        scratch = AllocSetContextCreate(CurrentMemoryContext, "leadscore write", ALLOCSET_DEFAULT_SIZES);
        MemoryContext old = MemoryContextSwitchTo(scratch);
        args[0] = text_datum(t.model);
        args[1] = text_array_datum(keys);
        arrays.encode(states, &summaries, as_of, &args[2]);
        MemoryContextSwitchTo(old);
    });
    spi_exec_plan(plan, args, arg_nulls);
    pg_guard([&] { MemoryContextDelete(scratch); });

    std::vector<StageChange> changes;
    for (const NewState& s : states)
        if (s.stage_changed) changes.push_back(StageChange{s.key, s.previous_stage, s.result.stage, s.result.score});
    record_stage_changes(changes, as_of, notify);
}

void StateStore::write_results(const std::vector<NewState>& states, Timestamp as_of,
                               std::optional<Timestamp> scored_at) {
    if (states.empty()) return;
    // The result columns but scored_at (kept unless given) and the summary (kept), as binary
    // arrays after the keys ($1) and scored_at ($2).
    std::vector<int> columns;
    for (int c = kFirstResultColumn; c < kStateColumnCount; c++)
        if (c != kStateScoredAt && c != kStateSummary) columns.push_back(c);
    std::vector<Oid> types = {TEXTARRAYOID, TIMESTAMPTZOID};
    std::string sets = "scored_at = coalesce($2, s.scored_at)", names;
    for (int c : columns) {
        types.push_back(state_column(c).array_type);
        sets += std::string(", ") + state_column(c).name + " = u." + state_column(c).name;
        names += std::string(", ") + state_column(c).name;
    }
    std::string params;
    for (std::size_t i = 3; i <= types.size(); i++) params += ", $" + std::to_string(i);
    const std::string sql = "UPDATE " + table_ + " AS s SET " + sets + " FROM unnest($1" + params + ") AS u(k" + names +
                            ") WHERE s.lead = u.k::" + cm_.tracking->key_type_name;
    SPIPlanPtr plan = cached_plan(cm_, sql, types);
    const std::size_t n = states.size();
    // Out here: an ERROR inside pg_guard longjmps past the lambda's frame.
    std::vector<std::string> keys;
    keys.reserve(n);
    for (const NewState& ns : states) keys.push_back(ns.key);
    ResultArrays arrays(columns, n);
    std::vector<Datum> args(types.size());
    std::vector<char> arg_nulls(types.size(), ' ');
    if (!scored_at) arg_nulls[1] = 'n';
    MemoryContext scratch = nullptr;
    pg_guard([&] {
        scratch = AllocSetContextCreate(CurrentMemoryContext, "leadscore write results", ALLOCSET_DEFAULT_SIZES);
        MemoryContext old = MemoryContextSwitchTo(scratch);
        args[0] = text_array_datum(keys);
        if (scored_at) args[1] = TimestampTzGetDatum(*scored_at);
        arrays.encode(states, nullptr, as_of, &args[2]);
        MemoryContextSwitchTo(old);
    });
    spi_exec_plan(plan, args, arg_nulls);
    pg_guard([&] { MemoryContextDelete(scratch); });
    std::vector<StageChange> changes;
    for (const NewState& ns : states)
        if (ns.stage_changed) changes.push_back(StageChange{ns.key, ns.previous_stage, ns.result.stage, ns.result.score});
    record_stage_changes(changes, as_of, true);
}

void StateStore::remove(const std::vector<std::string>& keys) {
    if (keys.empty()) return;
    spi_exec("DELETE FROM " + table_ + " WHERE lead = ANY($1::" + cm_.tracking->key_type_name + "[])",
             {{TEXTARRAYOID, key_array_literal(keys)}});
}

void StateStore::remove_absent_leads(const std::vector<std::string>* keys) {
    const TrackingInfo& t = *cm_.tracking;
    if (!OidIsValid(t.leads)) return;
    std::string sql = "DELETE FROM " + table_ + " s WHERE NOT EXISTS (SELECT 1 FROM " + t.leads_name + " l WHERE l." +
                      quote_ident(t.lead_key) + " = s.lead)";
    std::vector<SqlArg> args;
    if (keys) {
        if (keys->empty()) return;
        sql += " AND s.lead = ANY($1::" + t.key_type_name + "[])";
        args.push_back(SqlArg{TEXTARRAYOID, key_array_literal(*keys)});
    }
    spi_exec(sql, args);
}

}  // namespace leadscore::pg
