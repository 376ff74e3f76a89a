// Stage changes: their rows in leadscore.stage_history and their NOTIFY on channel
// leadscore_stage (JSON payload, delivered at commit).
#include <algorithm>

#include "core/decimal.hpp"
#include "pg/commit_notify.hpp"
#include "pg/datum.hpp"
#include "pg/spi.hpp"
#include "pg/state_store.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "utils/timestamp.h"
}

namespace leadscore::pg {

namespace {

// The notification of one stage change on channel leadscore_stage.
std::string stage_payload(const std::string& model, const std::string& key, const std::optional<std::string>& from,
                          const std::optional<std::string>& to, const std::string& score, const std::string& when) {
    return "{\"model\":" + json_string(model) + ",\"lead_id\":" + json_string(key) +
           ",\"from_stage\":" + json_string(from) + ",\"to_stage\":" + json_string(to) + ",\"score\":" + score +
           ",\"changed_at\":" + json_string(when) + "}";
}

void send_notification(const std::string& payload) {
    pg_guard([&] { Async_Notify("leadscore_stage", payload.c_str()); });
}

}  // namespace

void StateStore::record_stage_changes(const std::vector<StageChange>& changes, Timestamp as_of, bool notify) {
    if (changes.empty()) return;
    const TrackingInfo& t = *cm_.tracking;
    std::vector<std::optional<std::string>> h_keys, h_from, h_to, h_score;
    for (const StageChange& c : changes) {
        h_keys.emplace_back(c.key);
        h_from.emplace_back(c.from);
        h_to.emplace_back(c.to);
        h_score.emplace_back(format_points(c.score));
    }
    // A distributed model's history is keyed by the lead too; its ids are unique across nodes
    // (the node's group in the high bits, as Citus does for sequences).
    const std::string sql =
        t.history_table.empty()
            ? "INSERT INTO leadscore.stage_history (model, lead_id, from_stage, to_stage, score, changed_at) "
              "SELECT $1, u.k, u.f, u.t, u.s, $2 FROM unnest($3, $4, $5, $6) AS u(k, f, t, s)"
            : "INSERT INTO " + t.history_table +
                  " (lead, model, lead_id, from_stage, to_stage, score, changed_at, id, notify_pending) "
                  "SELECT u.k::" + t.key_type_name + ", $1, u.k, u.f, u.t, u.s, $2, "
                  "(SELECT groupid::bigint << 48 FROM pg_catalog.pg_dist_local_group) + "
                  "nextval('leadscore.stage_history_id_seq'), $7 FROM unnest($3, $4, $5, $6) AS u(k, f, t, s)";
    std::vector<Oid> types = {TEXTOID, TIMESTAMPTZOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, NUMERICARRAYOID};
    if (!t.history_table.empty()) types.push_back(BOOLOID);
    SPIPlanPtr plan = cached_plan(cm_, sql, types);
    const std::size_t n = changes.size();
    // On a Citus node no NOTIFY: a transaction that wrote to several nodes commits in two
    // phases, and PREPARE TRANSACTION refuses one that notified. The row waits, marked, for
    // the coordinator's notify_stage_changes().
    const bool pending = notify && t.on_shard;
    std::vector<Datum> args(types.size());
    std::vector<char> arg_nulls(types.size(), ' ');
    if (types.size() > 6) args[6] = BoolGetDatum(pending);
    MemoryContext scratch = nullptr;
    // Out here: an ERROR inside pg_guard longjmps past the lambda's frame.
    std::vector<Datum> keys(n), from(n), to(n), scores(n);
    std::vector<bool> no_nulls(n, false), from_nulls(n, false), to_nulls(n, false);
    pg_guard([&] {
        scratch = AllocSetContextCreate(CurrentMemoryContext, "leadscore history", ALLOCSET_SMALL_SIZES);
        MemoryContext old = MemoryContextSwitchTo(scratch);
        for (std::size_t i = 0; i < n; i++) {
            keys[i] = text_datum(*h_keys[i]);
            if (h_from[i])
                from[i] = text_datum(*h_from[i]);
            else
                from_nulls[i] = true;
            if (h_to[i])
                to[i] = text_datum(*h_to[i]);
            else
                to_nulls[i] = true;
            scores[i] = points_datum(changes[i].score);
        }
        args[0] = text_datum(t.model);
        args[1] = TimestampTzGetDatum(as_of);
        args[2] = build_array(TEXTOID, keys, no_nulls);
        args[3] = build_array(TEXTOID, from, from_nulls);
        args[4] = build_array(TEXTOID, to, to_nulls);
        args[5] = build_array(NUMERICOID, scores, no_nulls);
        MemoryContextSwitchTo(old);
    });
    spi_exec_plan(plan, args, arg_nulls);
    pg_guard([&] { MemoryContextDelete(scratch); });
    if (pending) {
        std::vector<std::string> keys;
        for (const auto& k : h_keys) keys.push_back(*k);
        signal_changes_waiting(t.model, keys);
    }
    if (!notify || pending) return;
    const std::string when = timestamp_text(as_of);
    for (std::size_t i = 0; i < h_keys.size(); i++)
        send_notification(stage_payload(t.model, *h_keys[i], h_from[i], h_to[i], *h_score[i], when));
}

std::int64_t StateStore::notify_pending_changes(bool only_if_any, const std::vector<std::string>* leads) {
    const TrackingInfo& t = *cm_.tracking;
    if (!t.distributed || t.history_table.empty()) return 0;
    std::string where = " WHERE notify_pending";
    std::vector<SqlArg> args;
    if (leads) {
        // Routed to these leads' shards alone.
        where += " AND lead = ANY($1::text[]::" + t.key_type_name + "[])";
        args.push_back(SqlArg{TEXTARRAYOID, key_array_literal(*leads)});
    } else {
        // A read first: most transactions changed no stage, and an UPDATE would make every
        // node a participant of their commit.
        if (only_if_any && spi_exec("SELECT 1 FROM " + t.history_table + where + " LIMIT 1", {}, false) == 0)
            return 0;
        // One deliverer of every lead's changes at a time: two would wait on each other's rows
        // across shards.
        const std::uint32_t model_hash = model_lock_id();
        pg_guard([&] {
            LOCKTAG tag;
            SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, model_hash, 0, 6);
            (void)LockAcquire(&tag, ExclusiveLock, false, false);
        });
    }
    const std::uint64_t n = spi_exec("UPDATE " + t.history_table + " SET notify_pending = false" + where +
                                         " RETURNING lead_id, from_stage, to_stage, score::text, changed_at, id",
                                     args, false);
    struct Pending {
        Timestamp at;
        std::int64_t id;
        std::string payload;
    };
    std::vector<Pending> pending;
    for (std::uint64_t i = 0; i < n; i++) {
        Pending p;
        p.at = DatumGetTimestampTz(*spi_datum(i, 5));
        p.id = DatumGetInt64(*spi_datum(i, 6));
        p.payload = stage_payload(t.model, *spi_text(i, 1), spi_text(i, 2), spi_text(i, 3), *spi_text(i, 4),
                                  timestamp_text(p.at));
        pending.push_back(std::move(p));
    }
    // In the order the changes happened (a lead's changes are on one node, ids in order).
    std::sort(pending.begin(), pending.end(),
              [](const Pending& a, const Pending& b) { return a.at != b.at ? a.at < b.at : a.id < b.id; });
    for (const Pending& p : pending) send_notification(p.payload);
    return static_cast<std::int64_t>(n);
}

}  // namespace leadscore::pg
