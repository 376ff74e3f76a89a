// Stage changes: their rows in leadscore.stage_history and their NOTIFY on channel
// leadscore_stage (JSON payload, delivered at commit).
#include "core/decimal.hpp"
#include "pg/spi.hpp"
#include "pg/state_store.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "utils/timestamp.h"
}

namespace leadscore::pg {

namespace {

std::string json_string(const std::optional<std::string>& s) {
    if (!s) return "null";
    std::string out = "\"";
    for (unsigned char c : *s) {
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                if (c < 0x20) {
                    static const char* const hex = "0123456789abcdef";
                    out += "\\u00";
                    out += hex[c >> 4];
                    out += hex[c & 15];
                } else {
                    out += static_cast<char>(c);
                }
        }
    }
    return out + "\"";
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
                  " (lead, model, lead_id, from_stage, to_stage, score, changed_at, id) "
                  "SELECT u.k::" + t.key_type_name + ", $1, u.k, u.f, u.t, u.s, $2, "
                  "(SELECT groupid::bigint << 48 FROM pg_catalog.pg_dist_local_group) + "
                  "nextval('leadscore.stage_history_id_seq') FROM unnest($3, $4, $5, $6) AS u(k, f, t, s)";
    SPIPlanPtr plan = cached_plan(cm_, sql, {TEXTOID, TIMESTAMPTZOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, NUMERICARRAYOID});
    const std::size_t n = changes.size();
    std::vector<Datum> args(6);
    std::vector<char> arg_nulls(6, ' ');
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
    // On a Citus node no NOTIFY: a transaction that wrote to several nodes commits in two
    // phases, and PREPARE TRANSACTION refuses one that notified (the history row stays).
    if (!notify || t.on_shard) return;
    const std::string when = json_string(timestamp_text(as_of));
    for (std::size_t i = 0; i < h_keys.size(); i++) {
        std::string payload = "{\"model\":" + json_string(t.model) + ",\"lead_id\":" + json_string(h_keys[i]) +
                              ",\"from_stage\":" + json_string(h_from[i]) + ",\"to_stage\":" + json_string(h_to[i]) +
                              ",\"score\":" + *h_score[i] + ",\"changed_at\":" + when + "}";
        pg_guard([&] { Async_Notify("leadscore_stage", payload.c_str()); });
    }
}

}  // namespace leadscore::pg
