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
                                               std::vector<Datum>& args, bool with_summary) {
    // Without summaries, the last column says only whether the row has one.
    std::string columns = state_column_names(0);
    if (!with_summary)
        columns = columns.substr(0, columns.rfind(state_column(kStateSummary).name)) + "summary IS NOT NULL";
    const std::string sql = "SELECT " + columns + " FROM " + table_ + where;
    std::vector<char> nulls(args.size(), ' ');
    const std::uint64_t n = spi_exec_plan(cached_plan(cm_, sql, types), args, nulls);
    std::vector<StoredState> rows(n);
    StateDatums row;
    StateFields fields;
    bool has_summary = false;
    MemoryContext per_row = nullptr;
    pg_guard([&] { per_row = AllocSetContextCreate(CurrentMemoryContext, "leadscore state read", ALLOCSET_SMALL_SIZES); });
    for (std::uint64_t i = 0; i < n; i++) {
        pg_guard([&] {
            MemoryContextReset(per_row);
            MemoryContext old = MemoryContextSwitchTo(per_row);
            for (int c = 0; c < kStateColumnCount; c++)
                row.values[c] = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, c + 1, &row.nulls[c]);
            if (!with_summary) {
                has_summary = DatumGetBool(row.values[kStateSummary]);
                row.nulls[kStateSummary] = true;
            }
            read_state_fields(row, StateFieldsNeeded::All, fields);
            MemoryContextSwitchTo(old);
        });
        parse_state_fields(row, fields, StateFieldsNeeded::All, rows[i]);
        if (!with_summary) rows[i].initialized = has_summary;
    }
    pg_guard([&] { MemoryContextDelete(per_row); });
    return rows;
}

std::vector<StoredState> StateStore::lock_and_read(const std::vector<std::string>* keys, bool lock) {
    if (keys && keys->empty()) return {};
    std::string where;
    std::vector<Oid> types;
    std::vector<Datum> args;
    if (keys) {
        where = " WHERE lead = ANY($1::" + cm_.tracking->key_type_name + "[])";
        types.push_back(TEXTARRAYOID);
        args.resize(1);
        pg_guard([&] { args[0] = text_array_datum(*keys); });
    }
    where += " ORDER BY lead";
    // (The coordinator of a distributed model holds the exclusive lock instead.)
    if (lock && !coordinates_shards()) where += " FOR UPDATE";
    return read_rows(where, types, args);
}

std::vector<StoredState> StateStore::read_due(Timestamp as_of) {
    std::vector<Datum> args = {TimestampTzGetDatum(as_of)};
    return read_rows(std::string(" WHERE next_change <= $1 ORDER BY lead") + (coordinates_shards() ? "" : " FOR UPDATE"),
                     {TIMESTAMPTZOID}, args);
}

std::vector<StoredState> StateStore::read_results() {
    std::vector<Datum> args;
    return read_rows(" ORDER BY lead", {}, args, false);
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
    const int result_columns = kStateColumnCount - kFirstResultColumn;
    std::vector<std::vector<Datum>> column_values(result_columns, std::vector<Datum>(n));
    std::vector<std::vector<bool>> column_nulls(result_columns, std::vector<bool>(n));
    std::vector<Datum> args(types.size());
    std::vector<char> arg_nulls(types.size(), ' ');
    MemoryContext scratch = nullptr;
    StateDatums row;
    pg_guard([&] {
        scratch = AllocSetContextCreate(CurrentMemoryContext, "leadscore write", ALLOCSET_DEFAULT_SIZES);
        MemoryContext old = MemoryContextSwitchTo(scratch);
        for (std::size_t i = 0; i < n; i++) {
            encode_results(states[i], summaries[i], as_of, row);
            for (int c = kFirstResultColumn; c < kStateColumnCount; c++) {
                column_values[c - kFirstResultColumn][i] = row.values[c];
                column_nulls[c - kFirstResultColumn][i] = row.nulls[c];
            }
        }
        args[0] = text_datum(t.model);
        args[1] = text_array_datum(keys);
        for (int c = kFirstResultColumn; c < kStateColumnCount; c++)
            args[2 + c - kFirstResultColumn] = build_array(state_column(c).type, column_values[c - kFirstResultColumn],
                                                           column_nulls[c - kFirstResultColumn]);
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
    std::vector<std::string> keys;
    std::vector<std::optional<std::string>> scores, fits, engagements, dq, fit_dq, stages, since, next;
    auto time_text = [](const std::optional<Timestamp>& t) {
        return t ? std::optional<std::string>(timestamp_text(*t)) : std::nullopt;
    };
    for (const NewState& n : states) {
        keys.push_back(n.key);
        scores.emplace_back(format_points(n.result.score));
        fits.emplace_back(format_points(n.result.fit));
        engagements.emplace_back(format_points(n.result.engagement));
        dq.emplace_back(n.result.disqualified ? "t" : "f");
        fit_dq.emplace_back(n.fit_disqualified ? "t" : "f");
        stages.push_back(n.result.stage);
        since.push_back(time_text(n.stage_since));
        next.push_back(time_text(n.result.next_change));
    }
    spi_exec("UPDATE " + table_ + " AS s SET score = u.score, fit_score = u.fit, engagement_score = u.eng, "
             "disqualified = u.dq, fit_disqualified = u.fdq, stage = u.stage, stage_since = u.since, "
             "next_change = u.next, scored_at = coalesce($10, s.scored_at) "
             "FROM unnest($1::text[], $2::numeric[], $3::numeric[], $4::numeric[], $5::boolean[], $6::boolean[], "
             "$7::text[], $8::timestamptz[], $9::timestamptz[]) AS u(k, score, fit, eng, dq, fdq, stage, since, next) "
             "WHERE s.lead = u.k::" + cm_.tracking->key_type_name,
             {{TEXTARRAYOID, key_array_literal(keys)},
              {TEXTOID, text_array_literal(scores)},
              {TEXTOID, text_array_literal(fits)},
              {TEXTOID, text_array_literal(engagements)},
              {TEXTOID, text_array_literal(dq)},
              {TEXTOID, text_array_literal(fit_dq)},
              {TEXTOID, text_array_literal(stages)},
              {TEXTOID, text_array_literal(since)},
              {TEXTOID, text_array_literal(next)},
              {TIMESTAMPTZOID, time_text(scored_at)}});
    std::vector<StageChange> changes;
    for (const NewState& n : states)
        if (n.stage_changed) changes.push_back(StageChange{n.key, n.previous_stage, n.result.stage, n.result.score});
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
