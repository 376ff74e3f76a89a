#include <algorithm>
#include <set>
#include <unordered_set>

#include "core/decimal.hpp"
#include "pg/scoring.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relscan.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "executor/executor.h"
#include "nodes/makefuncs.h"
#include "utils/array.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/snapmgr.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"
}

namespace leadscore::pg {

namespace {

constexpr long kFetchBatch = 5000;

// Runs a query through a cursor and hands each row to the callback.
template <class F>
void spi_scan(const std::string& sql, const std::vector<SqlArg>& args, F&& on_row) {
    Portal portal = nullptr;
    std::vector<Oid> types;
    std::vector<Datum> values(args.size());
    std::vector<char> nulls(args.size(), ' ');
    for (const auto& a : args) types.push_back(a.type);
    pg_guard([&] {
        for (std::size_t i = 0; i < args.size(); i++) {
            if (!args[i].text) {
                nulls[i] = 'n';
                continue;
            }
            Oid input_fn, ioparam;
            getTypeInputInfo(args[i].type, &input_fn, &ioparam);
            values[i] = OidInputFunctionCall(input_fn, const_cast<char*>(args[i].text->c_str()), ioparam, -1);
        }
        portal = SPI_cursor_open_with_args(nullptr, sql.c_str(), static_cast<int>(args.size()), types.data(),
                                           values.data(), nulls.data(), IsInParallelMode(), 0);
    });
    while (true) {
        std::uint64_t n = 0;
        pg_guard([&] {
            SPI_cursor_fetch(portal, true, kFetchBatch);
            n = SPI_processed;
        });
        if (n == 0) break;
        SPITupleTable* table = SPI_tuptable;
        for (std::uint64_t i = 0; i < n; i++) on_row(table->vals[i], table->tupdesc);
        pg_guard([&] { SPI_freetuptable(table); });
        check_for_interrupts();
    }
    pg_guard([&] { SPI_cursor_close(portal); });
}

std::optional<MicroPoints> stored_points(const std::optional<std::string>& text) {
    if (!text) return std::nullopt;
    std::string reason;
    auto v = parse_points(*text, &reason, INT64_MAX);
    if (!v) raise(sqlstate::kDataCorrupted, "leadscore: stored score \"" + *text + "\" is unreadable: " + reason);
    return v;
}

std::optional<Timestamp> stored_time(std::uint64_t row, int col) {
    auto d = spi_datum(row, col);
    if (!d) return std::nullopt;
    return static_cast<Timestamp>(DatumGetTimestampTz(*d));
}

std::string timestamp_text(Timestamp t) {
    std::string out;
    pg_guard([&] { out = timestamptz_to_str(static_cast<TimestampTz>(t)); });
    return out;
}


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

Oid array_type_of(Oid elem) {
    Oid t = InvalidOid;
    pg_guard([&] {
        t = get_array_type(elem);
        if (!OidIsValid(t)) elog(ERROR, "leadscore: type %u has no array type", elem);
    });
    return t;
}


// Numeric Datum of millionths; plain PostgreSQL code, call inside pg_guard.
Datum points_datum(MicroPoints p) {
    // Built from digits and scale, not parsed from text: the same numeric numeric_in gives.
    const ScaledPoints s = scaled_points(p);
    return NumericGetDatum(int64_div_fast_to_numeric(s.digits, s.scale));
}

}  // namespace

namespace {

// A summary as it is stored when scored as of as_of: without what has expired for good.
Summary stored_summary(const Model& model, Summary summary, Timestamp as_of) {
    prune_expired(model, summary, as_of);
    return summary;
}

}  // namespace

Timestamp transaction_now() { return static_cast<Timestamp>(GetCurrentTransactionStartTimestamp()); }

std::string key_array_literal(const std::vector<std::string>& keys) {
    std::vector<std::optional<std::string>> v(keys.begin(), keys.end());
    return text_array_literal(v);
}

Datum points_to_numeric(MicroPoints p) {
    Datum d = 0;
    pg_guard([&] { d = points_datum(p); });
    return d;
}

bool match_activity_row(const CompiledModel& cm, const Matcher& matcher, const RowLayout& layout,
                        const Datum* values, const bool* nulls, ActivityMatch& out) {
    out.rules.clear();
    if ((layout.lead && nulls[layout.lead - 1]) || nulls[layout.type - 1] || nulls[layout.time - 1]) return false;
    out.time = to_core_time(values[layout.time - 1], layout.time_type);
    const auto& rules = cm.model->activity_rules();
    std::vector<std::int64_t>& hits = out.rules;
    // One guarded pass per row: the text forms, then the conditions, which call
    // PostgreSQL's own operators. Only trivially destructible locals live in here.
    pg_guard([&] {
        if (layout.lead) layout.key_text.write(values[layout.lead - 1], out.key);
        layout.type_text.write(values[layout.type - 1], out.type);
        const std::vector<std::size_t>& candidates = cm.model->rules_for_type(out.type);
        for (std::size_t idx : candidates) {
            const ActivityRuleSpec& r = rules[idx];
            if (r.condition.attribute.empty()) {
                hits.push_back(r.id);
                continue;
            }
            const CompiledCondition& c = matcher.conditions.at(r.id);
            const int attno = layout.columns[c.column];
            if (Matcher::evaluate(c, values[attno - 1], nulls[attno - 1])) hits.push_back(r.id);
        }
    });
    return true;
}

FitFacts match_lead_row(const CompiledModel& cm, const RowLayout& layout, const Datum* values, const bool* nulls,
                        std::string& key_out) {
    FitFacts facts;
    const auto& rules = cm.model->fit_rules();
    facts.matches.reserve(rules.size());
    std::vector<std::int64_t>& hits = facts.matches;
    key_out.clear();
    pg_guard([&] {
        if (!nulls[layout.lead - 1]) layout.key_text.write(values[layout.lead - 1], key_out);
        for (const FitRuleSpec& r : rules) {
            const CompiledCondition& c = cm.fit_matcher->conditions.at(r.id);
            const int attno = layout.columns[c.column];
            if (Matcher::evaluate(c, values[attno - 1], nulls[attno - 1])) hits.push_back(r.id);
        }
    });
    FitResult fr = compute_fit(*cm.model, facts.matches);
    facts.fit = fr.fit;
    facts.disqualified = fr.disqualified;
    return facts;
}

namespace {

std::string column_list(const std::vector<std::string>& names) {
    std::string out;
    std::set<std::string> seen;
    for (const auto& n : names) {
        if (!seen.insert(n).second) continue;
        if (!out.empty()) out += ", ";
        out += quote_ident(n);
    }
    return out;
}

}  // namespace

void collect_activities(const CompiledModel& cm, const std::vector<std::string>* keys,
                        std::map<std::string, Summary>& out) {
    const TrackingInfo& t = *cm.tracking;
    if (keys && keys->empty()) return;
    std::vector<std::string> cols = {t.lead_column, t.type_column, t.time_column};
    for (const auto& c : cm.activity_matcher->columns) cols.push_back(c.name);
    std::string sql = "SELECT " + column_list(cols) + " FROM " + t.activities_name + " WHERE " +
                      quote_ident(t.lead_column) + " IS NOT NULL AND " + quote_ident(t.type_column) +
                      " IS NOT NULL AND " + quote_ident(t.time_column) + " IS NOT NULL";
    std::vector<SqlArg> args;
    if (keys) {
        sql += " AND " + quote_ident(t.lead_column) + " = ANY($1)";
        args.push_back(SqlArg{array_type_of(t.key_type), key_array_literal(*keys)});
    }
    std::optional<RowLayout> layout;
    std::vector<Datum> values;
    std::vector<bool> unused;
    bool* nulls = nullptr;
    std::vector<char> null_buf;
    ActivityMatch match;
    spi_scan(sql, args, [&](HeapTuple tuple, TupleDesc desc) {
        if (!layout) {
            layout = activity_layout(cm, desc, *cm.activity_matcher);
            values.resize(desc->natts);
            null_buf.resize(desc->natts);
            nulls = reinterpret_cast<bool*>(null_buf.data());
        }
        pg_guard([&] { heap_deform_tuple(tuple, desc, values.data(), nulls); });
        if (!match_activity_row(cm, *cm.activity_matcher, *layout, values.data(), nulls, match)) return;
        if (match.rules.empty()) return;
        Summary& s = out[match.key];
        for (std::int64_t id : match.rules) s.add(id, match.time);
    });
}

void collect_fits(const CompiledModel& cm, const std::vector<std::string>* keys,
                  std::map<std::string, FitFacts>& out) {
    const TrackingInfo& t = *cm.tracking;
    if (!OidIsValid(t.leads)) return;
    if (keys && keys->empty()) return;
    std::vector<std::string> cols = {t.lead_key};
    for (const auto& c : cm.fit_matcher->columns) cols.push_back(c.name);
    std::string sql = "SELECT " + column_list(cols) + " FROM " + t.leads_name + " WHERE " + quote_ident(t.lead_key) +
                      " IS NOT NULL";
    std::vector<SqlArg> args;
    if (keys) {
        sql += " AND " + quote_ident(t.lead_key) + " = ANY($1)";
        args.push_back(SqlArg{array_type_of(t.key_type), key_array_literal(*keys)});
    }
    std::optional<RowLayout> layout;
    std::vector<Datum> values;
    std::vector<char> null_buf;
    std::string key;
    spi_scan(sql, args, [&](HeapTuple tuple, TupleDesc desc) {
        if (!layout) {
            layout = lead_layout(cm, desc);
            values.resize(desc->natts);
            null_buf.resize(desc->natts);
        }
        bool* nulls = reinterpret_cast<bool*>(null_buf.data());
        pg_guard([&] { heap_deform_tuple(tuple, desc, values.data(), nulls); });
        FitFacts f = match_lead_row(cm, *layout, values.data(), nulls, key);
        if (!key.empty() || !nulls[layout->lead - 1]) out[key] = std::move(f);
    });
}

NewState compute_new_state(const Model& model, const std::string& key, const StoredState* stored, Summary summary,
                           MicroPoints fit, bool fit_disqualified, Timestamp as_of, StageMode mode) {
    NewState ns;
    ns.key = key;
    EngagementResult e = compute_engagement(model, summary, as_of, false);
    ns.result = combine_score(model, fit, fit_disqualified, e);
    ns.fit_disqualified = fit_disqualified;
    ns.summary = std::move(summary);
    if (stored && stored->initialized) {
        ns.previous_stage = stored->stage;
        if (mode == StageMode::KeepSticky)
            ns.result.stage = apply_sticky(model, stored->stage, ns.result.stage, ns.result.disqualified);
        ns.stage_changed = ns.result.stage != stored->stage;
        ns.stage_since = ns.stage_changed ? std::optional<Timestamp>(as_of) : stored->stage_since;
    } else {
        ns.stage_changed = ns.result.stage.has_value();
        ns.stage_since = as_of;
    }
    return ns;
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

void StateStore::lock_keys(const std::vector<std::string>& keys) {
    // A lead's row and its first activities can arrive in two concurrent transactions that
    // cannot see each other; both sides meet on a per-(model, key bucket) lock, in bucket
    // order. Buckets bound the locks a big statement takes (the shared lock table is small).
    if (!OidIsValid(cm_.tracking->leads) || keys.empty()) return;
    constexpr std::uint32_t kBuckets = 256;
    const std::uint32_t model_hash =
        static_cast<std::uint32_t>(std::hash<std::string>{}(cm_.tracking->model));
    std::vector<std::uint32_t> buckets;
    buckets.reserve(std::min<std::size_t>(keys.size(), kBuckets));
    for (const std::string& k : keys)
        buckets.push_back(static_cast<std::uint32_t>(std::hash<std::string>{}(k) % kBuckets));
    std::sort(buckets.begin(), buckets.end());
    buckets.erase(std::unique(buckets.begin(), buckets.end()), buckets.end());
    pg_guard([&] {
        for (std::uint32_t b : buckets) {
            LOCKTAG tag;
            SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, model_hash, b, 3);
            (void)LockAcquire(&tag, ExclusiveLock, false, false);
        }
    });
}

void StateStore::lock_for_write() {
    pg_guard([&] { LockRelationOid(relid_, RowExclusiveLock); });
}

void StateStore::lock_exclusive() {
    pg_guard([&] { LockRelationOid(relid_, ShareRowExclusiveLock); });
}

namespace {

// text[] Datum of the keys; call inside pg_guard.
Datum keys_datum(const std::vector<std::string>& keys) {
    std::vector<Datum> values(keys.size());
    std::vector<bool> nulls(keys.size(), false);
    for (std::size_t i = 0; i < keys.size(); i++)
        values[i] = PointerGetDatum(cstring_to_text_with_len(keys[i].data(), static_cast<int>(keys[i].size())));
    return build_array(TEXTOID, values, nulls);
}

Datum text_datum(const std::string& s) {
    return PointerGetDatum(cstring_to_text_with_len(s.data(), static_cast<int>(s.size())));
}

// Reads the rows of SPI_tuptable produced by the state SELECTs below.
std::vector<StoredState> stored_rows(std::uint64_t n) {
    std::vector<StoredState> rows;
    rows.reserve(n);
    for (std::uint64_t i = 0; i < n; i++) {
        StoredState s;
        s.key = *spi_text(i, 1);
        auto summary = spi_datum(i, 2);
        if (summary) {
            s.initialized = true;
            const unsigned char* data = nullptr;
            std::size_t len = 0;
            pg_guard([&] {
                bytea* b = DatumGetByteaPP(*summary);
                data = reinterpret_cast<const unsigned char*>(VARDATA_ANY(b));
                len = VARSIZE_ANY_EXHDR(b);
            });
            s.summary = Summary::deserialize(data, len);
        }
        s.score = stored_points(spi_text(i, 3)).value_or(0);
        s.fit = stored_points(spi_text(i, 4)).value_or(0);
        s.engagement = stored_points(spi_text(i, 5)).value_or(0);
        s.fit_disqualified = DatumGetBool(spi_datum(i, 6).value_or(BoolGetDatum(false)));
        s.disqualified = DatumGetBool(spi_datum(i, 7).value_or(BoolGetDatum(false)));
        s.stage = spi_text(i, 8);
        s.stage_since = stored_time(i, 9);
        s.next_change = stored_time(i, 10);
        s.scored_at = stored_time(i, 11).value_or(0);
        rows.push_back(std::move(s));
    }
    return rows;
}

constexpr const char* kStateColumns =
    "SELECT lead_id, summary, score::text, fit_score::text, engagement_score::text, fit_disqualified, "
    "disqualified, stage, stage_since, next_change, scored_at FROM ";

}  // namespace

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
        args[0] = keys_datum(keys);
        args[1] = text_datum(t.model);
        args[2] = TimestampTzGetDatum(as_of);
    });
    spi_exec_plan(plan, args, nulls);
}

std::vector<StoredState> StateStore::lock_and_read(const std::vector<std::string>* keys, bool lock) {
    const TrackingInfo& t = *cm_.tracking;
    if (keys && keys->empty()) return {};
    std::string sql = std::string(kStateColumns) + table_;
    if (keys) sql += " WHERE lead = ANY($1::" + t.key_type_name + "[])";
    sql += " ORDER BY lead";
    if (lock) sql += " FOR UPDATE";
    std::vector<Datum> args;
    std::vector<char> nulls;
    std::vector<Oid> types;
    if (keys) {
        types.push_back(TEXTARRAYOID);
        args.resize(1);
        nulls.assign(1, ' ');
        pg_guard([&] { args[0] = keys_datum(*keys); });
    }
    SPIPlanPtr plan = cached_plan(cm_, sql, types);
    return stored_rows(spi_exec_plan(plan, args, nulls));
}

std::vector<StoredState> StateStore::read_due(Timestamp as_of) {
    const std::string sql = std::string(kStateColumns) + table_ + " WHERE next_change <= $1 ORDER BY lead FOR UPDATE";
    SPIPlanPtr plan = cached_plan(cm_, sql, {TIMESTAMPTZOID});
    std::vector<Datum> args = {TimestampTzGetDatum(as_of)};
    std::vector<char> nulls(1, ' ');
    return stored_rows(spi_exec_plan(plan, args, nulls));
}

void StateStore::write(const std::vector<NewState>& states, Timestamp as_of, bool notify) {
    if (states.empty()) return;
    const TrackingInfo& t = *cm_.tracking;
    const std::string sql =
        "INSERT INTO " + table_ +
        " AS s (lead, model, lead_id, score, fit_score, engagement_score, stage, disqualified, fit_disqualified, "
        "stage_since, scored_at, next_change, summary) "
        "SELECT u.k::" + t.key_type_name + ", $1, u.k, u.score, u.fit, u.eng, u.stage, u.disq, u.fitdisq, u.since, $2, "
        "u.next, u.summary FROM unnest($3, $4, $5, $6, $7, $8, $9, $10, $11, $12) "
        "AS u(k, score, fit, eng, stage, disq, fitdisq, since, next, summary) ORDER BY 1 "
        "ON CONFLICT (lead) DO UPDATE SET score = excluded.score, fit_score = excluded.fit_score, "
        "engagement_score = excluded.engagement_score, stage = excluded.stage, disqualified = excluded.disqualified, "
        "fit_disqualified = excluded.fit_disqualified, stage_since = excluded.stage_since, "
        "scored_at = excluded.scored_at, next_change = excluded.next_change, summary = excluded.summary";
    SPIPlanPtr plan = cached_plan(cm_, sql,
                                  {TEXTOID, TIMESTAMPTZOID, TEXTARRAYOID, NUMERICARRAYOID, NUMERICARRAYOID,
                                   NUMERICARRAYOID, TEXTARRAYOID, BOOLARRAYOID, BOOLARRAYOID,
                                   TIMESTAMPTZARRAYOID, TIMESTAMPTZARRAYOID, BYTEAARRAYOID});
    const std::size_t n = states.size();
    std::vector<std::string> summaries;
    summaries.reserve(n);
    for (const NewState& s : states) summaries.push_back(stored_summary(*cm_.model, s.summary, as_of).serialize());
    std::vector<std::string> texts;  // formatted numbers, kept alive while Datums are built
    MemoryContext scratch = nullptr;
    std::vector<Datum> args(12);
    std::vector<char> arg_nulls(12, ' ');
    // Out here: an ERROR inside pg_guard longjmps past the lambda's frame.
    std::vector<Datum> keys(n), scores(n), fits(n), engs(n), stages(n), disq(n), fitdisq(n), since(n), next(n),
        sums(n);
    std::vector<bool> no_nulls(n, false), stage_nulls(n, false), since_nulls(n, false), next_nulls(n, false);
    pg_guard([&] {
        scratch = AllocSetContextCreate(CurrentMemoryContext, "leadscore write", ALLOCSET_DEFAULT_SIZES);
        MemoryContext old = MemoryContextSwitchTo(scratch);
        for (std::size_t i = 0; i < n; i++) {
            const NewState& s = states[i];
            keys[i] = PointerGetDatum(cstring_to_text_with_len(s.key.data(), static_cast<int>(s.key.size())));
            scores[i] = points_datum(s.result.score);
            fits[i] = points_datum(s.result.fit);
            engs[i] = points_datum(s.result.engagement);
            if (s.result.stage)
                stages[i] = PointerGetDatum(cstring_to_text_with_len(s.result.stage->data(),
                                                                     static_cast<int>(s.result.stage->size())));
            else
                stage_nulls[i] = true;
            disq[i] = BoolGetDatum(s.result.disqualified);
            fitdisq[i] = BoolGetDatum(s.fit_disqualified);
            if (s.stage_since)
                since[i] = TimestampTzGetDatum(*s.stage_since);
            else
                since_nulls[i] = true;
            if (s.result.next_change)
                next[i] = TimestampTzGetDatum(*s.result.next_change);
            else
                next_nulls[i] = true;
            const std::string& bytes = summaries[i];
            bytea* b = static_cast<bytea*>(palloc(VARHDRSZ + bytes.size()));
            SET_VARSIZE(b, VARHDRSZ + bytes.size());
            memcpy(VARDATA(b), bytes.data(), bytes.size());
            sums[i] = PointerGetDatum(b);
        }
        args[0] = PointerGetDatum(cstring_to_text_with_len(t.model.data(), static_cast<int>(t.model.size())));
        args[1] = TimestampTzGetDatum(as_of);
        args[2] = build_array(TEXTOID, keys, no_nulls);
        args[3] = build_array(NUMERICOID, scores, no_nulls);
        args[4] = build_array(NUMERICOID, fits, no_nulls);
        args[5] = build_array(NUMERICOID, engs, no_nulls);
        args[6] = build_array(TEXTOID, stages, stage_nulls);
        args[7] = build_array(BOOLOID, disq, no_nulls);
        args[8] = build_array(BOOLOID, fitdisq, no_nulls);
        args[9] = build_array(TIMESTAMPTZOID, since, since_nulls);
        args[10] = build_array(TIMESTAMPTZOID, next, next_nulls);
        args[11] = build_array(BYTEAOID, sums, no_nulls);
        MemoryContextSwitchTo(old);
    });
    spi_exec_plan(plan, args, arg_nulls);
    pg_guard([&] { MemoryContextDelete(scratch); });

    std::vector<StageChange> changes;
    for (const NewState& s : states)
        if (s.stage_changed) changes.push_back(StageChange{s.key, s.previous_stage, s.result.stage, s.result.score});
    record_stage_changes(changes, as_of, notify);
}

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
    SPIPlanPtr plan = cached_plan(
        cm_,
        "INSERT INTO leadscore.stage_history (model, lead_id, from_stage, to_stage, score, changed_at) "
        "SELECT $1, u.k, u.f, u.t, u.s, $2 FROM unnest($3, $4, $5, $6) AS u(k, f, t, s)",
        {TEXTOID, TIMESTAMPTZOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, NUMERICARRAYOID});
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
    if (!notify) return;
    const std::string when = json_string(timestamp_text(as_of));
    for (std::size_t i = 0; i < h_keys.size(); i++) {
        std::string payload = "{\"model\":" + json_string(t.model) + ",\"lead_id\":" + json_string(h_keys[i]) +
                              ",\"from_stage\":" + json_string(h_from[i]) + ",\"to_stage\":" + json_string(h_to[i]) +
                              ",\"score\":" + *h_score[i] + ",\"changed_at\":" + when + "}";
        pg_guard([&] { Async_Notify("leadscore_stage", payload.c_str()); });
    }
}

namespace {

// Attribute numbers of the state table's columns.
struct StateColumns {
    AttrNumber lead, summary, score, fit, engagement, stage, disqualified, fit_disqualified, stage_since, scored_at,
        next_change;
};

// Plain PostgreSQL code: call inside pg_guard. Cached per compiled model.
StateColumns state_columns(Relation rel, std::vector<std::int16_t>& cache) {
    static const char* const names[] = {"lead",         "summary",          "score",       "fit_score",
                                        "engagement_score", "stage",        "disqualified", "fit_disqualified",
                                        "stage_since",  "scored_at",        "next_change"};
    constexpr std::size_t n = sizeof(names) / sizeof(names[0]);
    static_assert(sizeof(StateColumns) == n * sizeof(AttrNumber), "one name per state column");
    if (cache.size() != n) {
        std::int16_t found[n];
        for (std::size_t i = 0; i < n; i++) {
            AttrNumber a = get_attnum(RelationGetRelid(rel), names[i]);
            if (a == InvalidAttrNumber)
                ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED),
                                errmsg("leadscore: state table \"%s\" has no column \"%s\"",
                                       RelationGetRelationName(rel), names[i]),
                                errhint("Run leadscore.untrack() and leadscore.track() again.")));
            found[i] = a;
        }
        cache.assign(found, found + n);
    }
    const std::vector<std::int16_t>& c = cache;
    return StateColumns{c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9], c[10]};
}

// Stored numeric to millionths; plain PostgreSQL code, call inside pg_guard.
MicroPoints numeric_points(Datum d) {
    char* text = DatumGetCString(DirectFunctionCall1(numeric_out, d));
    std::string reason;
    auto v = parse_points(text, &reason, INT64_MAX);
    if (!v)
        ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED),
                        errmsg("leadscore: stored score \"%s\" is unreadable: %s", text, reason.c_str())));
    pfree(text);
    return *v;
}

}  // namespace

std::vector<std::string> StateStore::apply_deltas_directly(const DeltaMap& deltas,
                                                           Timestamp as_of, std::vector<StageChange>& stage_changes) {
    std::vector<std::string> slow;
    if (deltas.empty()) return slow;
    const Model& model = *cm_.model;
    const Oid key_type = cm_.tracking->key_type;
    // C++ objects live out here: an ERROR inside pg_guard longjmps past the lambda's frame.
    std::vector<Datum> key_values;
    std::string key_text, failure, failure_state, bytes;
    // Leads whose state row now holds their deltas.
    std::vector<char> handled(deltas.size(), 0);
    std::uint32_t lead = DeltaMap::npos;
    StoredState stored;
    std::optional<NewState> next;

    pg_guard([&] {
        Relation rel = table_open(relid_, RowExclusiveLock);
        const Oid index_oid = RelationGetPrimaryKeyIndex(rel);
        if (!OidIsValid(index_oid))
            ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED),
                            errmsg("leadscore: state table \"%s\" has no primary key", RelationGetRelationName(rel)),
                            errhint("Run leadscore.untrack() and leadscore.track() again.")));
        Relation index = index_open(index_oid, RowExclusiveLock);
        const StateColumns col = state_columns(rel, cm_.state_attnums);
        MemoryContext scratch = AllocSetContextCreate(CurrentMemoryContext, "leadscore direct", ALLOCSET_DEFAULT_SIZES);
        MemoryContext old = MemoryContextSwitchTo(scratch);

        // The key array in the index's own ordering: the scan returns rows in key order, the
        // same order every other writer locks them in.
        StateKeyInfo& ki = cm_.state_key;
        if (!ki.ready) {
            Oid input_fn;
            getTypeInputInfo(key_type, &input_fn, &ki.ioparam);
            fmgr_info_cxt(input_fn, &ki.input, cm_.context ? cm_.context : TopMemoryContext);
            get_typlenbyvalalign(key_type, &ki.typlen, &ki.byval, &ki.align);
            const Oid opcintype = index->rd_opcintype[0];
            const Oid eq = get_opfamily_member(index->rd_opfamily[0], opcintype, opcintype, BTEqualStrategyNumber);
            if (!OidIsValid(eq))
                elog(ERROR, "leadscore: no equality operator for the key of \"%s\"", RelationGetRelationName(rel));
            ki.eq_proc = get_opcode(eq);
            ki.ready = true;
        }
        key_values.reserve(deltas.size());
        for (std::uint32_t i = 0; i < deltas.size(); i++)
            key_values.push_back(
                InputFunctionCall(&ki.input, const_cast<char*>(deltas.key(i).c_str()), ki.ioparam, -1));
        ArrayType* key_array = key_values.size() == 1 ? nullptr
                               : construct_array(key_values.data(), static_cast<int>(key_values.size()),
                                                 key_type, ki.typlen, ki.byval, ki.align);
        ScanKeyData skey;
        if (key_values.size() == 1)
            ScanKeyEntryInitialize(&skey, 0, 1, BTEqualStrategyNumber, InvalidOid, index->rd_indcollation[0],
                                   ki.eq_proc, key_values[0]);
        else
            ScanKeyEntryInitialize(&skey, SK_SEARCHARRAY, 1, BTEqualStrategyNumber, key_type,
                                   index->rd_indcollation[0], ki.eq_proc, PointerGetDatum(key_array));

        // Rows written earlier in this transaction, and by transactions that committed while
        // we waited for the per-lead locks, are seen.
        CommandCounterIncrement();
        Snapshot snapshot = RegisterSnapshot(GetLatestSnapshot());
        TupleTableSlot* found = table_slot_create(rel, nullptr);
        IndexScanDesc scan = index_beginscan(rel, index, snapshot, 1, 0);
        index_rescan(scan, &skey, 1, nullptr, 0);

        // Executor state for index insertions, set up only when an update is not HOT.
        EState* estate = nullptr;
        ResultRelInfo* rri = nullptr;
        auto executor_state = [&] {
            if (estate) return;
            // Created under scratch: it outlives the row that needed it first.
            MemoryContext row_context = MemoryContextSwitchTo(scratch);
            estate = CreateExecutorState();
            RangeTblEntry* rte = makeNode(RangeTblEntry);
            rte->rtekind = RTE_RELATION;
            rte->relid = relid_;
            rte->relkind = rel->rd_rel->relkind;
            rte->rellockmode = RowExclusiveLock;
            ExecInitRangeTable(estate, list_make1(rte));
            rri = makeNode(ResultRelInfo);
            InitResultRelInfo(rri, rel, 1, nullptr, 0);
            ExecOpenIndices(rri, false);
            estate->es_output_cid = GetCurrentCommandId(true);
            estate->es_snapshot = snapshot;
            MemoryContextSwitchTo(row_context);
        };
        TupleTableSlot* updated = table_slot_create(rel, nullptr);
        const int natts = RelationGetDescr(rel)->natts;
        const TextOutput key_out(key_type);

        // Most rows have no concurrent writer: they are updated without a separate tuple lock.
        const CommandId cid = GetCurrentCommandId(true);
        // Values computed for one row live until the next row only.
        MemoryContext per_row = AllocSetContextCreate(scratch, "leadscore direct row", ALLOCSET_DEFAULT_SIZES);
        for (;;) {
            // The scan keeps state of its own across rows: it allocates under scratch.
            MemoryContextSwitchTo(scratch);
            if (!index_getnext_slot(scan, ForwardScanDirection, found)) break;
            MemoryContextReset(per_row);
            MemoryContextSwitchTo(per_row);
            for (bool locked = false;;) {
                slot_getallattrs(found);
                if (found->tts_isnull[col.lead - 1]) break;
                key_out.write(found->tts_values[col.lead - 1], key_text);
                lead = deltas.find(key_text);
                if (lead == DeltaMap::npos || found->tts_isnull[col.summary - 1]) break;

                bytea* b = DatumGetByteaPP(found->tts_values[col.summary - 1]);
                stored = StoredState();
                stored.key = key_text;
                stored.initialized = true;
                stored.fit = numeric_points(found->tts_values[col.fit - 1]);
                stored.fit_disqualified = DatumGetBool(found->tts_values[col.fit_disqualified - 1]);
                const Datum* v = found->tts_values;
                if (!found->tts_isnull[col.stage - 1]) stored.stage = TextDatumGetCString(v[col.stage - 1]);
                if (!found->tts_isnull[col.stage_since - 1])
                    stored.stage_since = static_cast<Timestamp>(DatumGetTimestampTz(v[col.stage_since - 1]));

                // Scoring is C++ that reports problems by exception: keep it out of this PG_TRY frame.
                next.reset();
                failure.clear();
                failure_state.clear();
                bool decoded = false;
                try {
                    stored.summary = Summary::deserialize(reinterpret_cast<const unsigned char*>(VARDATA_ANY(b)),
                                                          VARSIZE_ANY_EXHDR(b));
                    decoded = true;
                    // A summary pruned by a later transaction than ours is rebuilt by the SQL path.
                    bool consistent = stored.summary.exact_at(as_of);
                    for (const Occurrence& o : deltas.removed(lead))
                        if (consistent && !stored.summary.remove(o.rule_id, o.time)) consistent = false;
                    if (consistent) {
                        for (const Occurrence& o : deltas.added(lead)) stored.summary.add(o.rule_id, o.time);
                        next = compute_new_state(model, key_text, &stored, std::move(stored.summary), stored.fit,
                                                 stored.fit_disqualified, as_of, StageMode::Fresh);
                        prune_expired(model, next->summary, as_of);
                    }
                } catch (const UserError& e) {
                    failure = e.what();
                    failure_state = e.sqlstate();
                } catch (const std::exception& e) {
                    failure = e.what();
                }
                if (!failure.empty() && !decoded)
                    ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED),
                                    errmsg("leadscore: stored state of lead %s is unreadable: %s", key_text.c_str(),
                                           failure.c_str())));
                if (!failure.empty()) {
                    const char* st = failure_state.size() == 5 ? failure_state.c_str() : "XX000";
                    ereport(ERROR, (errcode(MAKE_SQLSTATE(st[0], st[1], st[2], st[3], st[4])),
                                    errmsg("leadscore model \"%s\", lead %s: %s", cm_.tracking->model.c_str(),
                                           key_text.c_str(), failure.c_str())));
                }
                if (!next) break;  // a summary without a deleted occurrence is rebuilt by the SQL path
                const NewState& ns = *next;

                ExecClearTuple(updated);
                memcpy(updated->tts_values, found->tts_values, sizeof(Datum) * natts);
                memcpy(updated->tts_isnull, found->tts_isnull, sizeof(bool) * natts);
                auto set = [&](AttrNumber a, Datum v, bool isnull) {
                    updated->tts_values[a - 1] = v;
                    updated->tts_isnull[a - 1] = isnull;
                };
                set(col.score, points_datum(ns.result.score), false);
                // An activity never changes the fit: the stored datum is kept.
                set(col.fit, ns.result.fit == stored.fit ? found->tts_values[col.fit - 1] : points_datum(ns.result.fit),
                    false);
                set(col.engagement, points_datum(ns.result.engagement), false);
                if (ns.result.stage)
                    set(col.stage,
                        PointerGetDatum(cstring_to_text_with_len(ns.result.stage->data(),
                                                                 static_cast<int>(ns.result.stage->size()))),
                        false);
                else
                    set(col.stage, 0, true);
                set(col.disqualified, BoolGetDatum(ns.result.disqualified), false);
                set(col.fit_disqualified, BoolGetDatum(ns.fit_disqualified), false);
                set(col.stage_since, ns.stage_since ? TimestampTzGetDatum(*ns.stage_since) : 0, !ns.stage_since);
                set(col.scored_at, TimestampTzGetDatum(as_of), false);
                set(col.next_change, ns.result.next_change ? TimestampTzGetDatum(*ns.result.next_change) : 0,
                    !ns.result.next_change);
                bytes = ns.summary.serialize();
                bytea* nb = static_cast<bytea*>(palloc(VARHDRSZ + bytes.size()));
                SET_VARSIZE(nb, VARHDRSZ + bytes.size());
                memcpy(VARDATA(nb), bytes.data(), bytes.size());
                set(col.summary, PointerGetDatum(nb), false);
                ExecStoreVirtualTuple(updated);

                bool update_indexes = false;
                ItemPointerData target = found->tts_tid;
                TM_FailureData tmfd;
                LockTupleMode lockmode;
                TM_Result res = table_tuple_update(rel, &target, updated, cid, snapshot, InvalidSnapshot, true, &tmfd,
                                                   &lockmode, &update_indexes);
                if (res == TM_Updated && !locked) {
                    // Another transaction updated the row after our snapshot: lock its newest
                    // version and start over from that.
                    res = table_tuple_lock(rel, &target, snapshot, found, cid, LockTupleExclusive, LockWaitBlock,
                                           TUPLE_LOCK_FLAG_FIND_LAST_VERSION, &tmfd);
                    if (res == TM_Ok) {
                        locked = true;
                        continue;
                    }
                }
                // A row deleted meanwhile is left to the SQL path, which sees the current truth.
                if (res == TM_Deleted) break;
                if (res != TM_Ok)
                    ereport(ERROR, (errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
                                    errmsg("leadscore: could not update the state row of lead %s (result %d)",
                                           key_text.c_str(), static_cast<int>(res))));
                if (update_indexes) {
                    executor_state();
                    List* recheck = ExecInsertIndexTuples(rri, updated, estate, true, false, nullptr, NIL);
                    list_free(recheck);
                    ResetPerTupleExprContext(estate);
                }
                if (ns.stage_changed) stage_changes.push_back(StageChange{key_text, ns.previous_stage, ns.result.stage,
                                                                          ns.result.score});
                handled[lead] = 1;
                break;
            }
        }
        MemoryContextSwitchTo(scratch);
        index_endscan(scan);

        ExecDropSingleTupleTableSlot(found);
        ExecDropSingleTupleTableSlot(updated);
        if (estate) {
            ExecCloseIndices(rri);
            FreeExecutorState(estate);
        }
        UnregisterSnapshot(snapshot);
        MemoryContextSwitchTo(old);
        MemoryContextDelete(scratch);
        index_close(index, NoLock);
        table_close(rel, NoLock);
        // Later commands of this transaction see the new state.
        CommandCounterIncrement();
    });
    for (std::uint32_t i = 0; i < deltas.size(); i++)
        if (!handled[i]) slow.push_back(deltas.key(i));
    return slow;
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

namespace {

// `summary` is n's summary as it would be stored.
bool same_result(const StoredState& s, const NewState& n, const Summary& summary) {
    return s.initialized && s.score == n.result.score && s.fit == n.result.fit &&
           s.engagement == n.result.engagement && s.disqualified == n.result.disqualified &&
           s.fit_disqualified == n.fit_disqualified && s.stage == n.result.stage &&
           s.next_change == n.result.next_change && s.summary == summary;
}

}  // namespace

std::int64_t rescore_model(const std::string& model, Timestamp as_of, bool notify, std::int64_t* leads_scored) {
    std::shared_ptr<CompiledModel> cm = get_model(model, true);
    SpiConnection spi;
    StateStore store(*cm);
    // Writers of this model wait until the rescore commits; it then reads a settled state.
    store.lock_exclusive();
    std::map<std::string, Summary> summaries;
    std::map<std::string, FitFacts> fits;
    collect_activities(*cm, nullptr, summaries);
    const bool has_leads = OidIsValid(cm->tracking->leads);
    if (has_leads) collect_fits(*cm, nullptr, fits);
    store.remove_absent_leads(nullptr);
    std::vector<StoredState> stored = store.lock_and_read(nullptr, false);
    std::map<std::string, const StoredState*> by_key;
    for (const auto& s : stored) by_key[s.key] = &s;

    std::set<std::string> keys;
    for (const auto& [k, v] : summaries) keys.insert(k);
    for (const auto& [k, v] : fits) keys.insert(k);
    for (const auto& [k, v] : by_key) keys.insert(k);

    std::vector<NewState> changed;
    std::int64_t score_changes = 0, scored = 0;
    for (const std::string& key : keys) {
        if (has_leads && !fits.count(key)) continue;  // activities of unknown leads are not scored
        auto sit = summaries.find(key);
        Summary summary = sit == summaries.end() ? Summary() : std::move(sit->second);
        FitFacts fit;
        if (auto f = fits.find(key); f != fits.end()) fit = f->second;
        auto st = by_key.find(key);
        const StoredState* prev = st == by_key.end() ? nullptr : st->second;
        scored++;
        NewState ns = compute_new_state(*cm->model, key, prev, summary, fit.fit, fit.disqualified, as_of,
                                        StageMode::Fresh);
        if (prev && prev->initialized) {
            const Summary stored_form = stored_summary(*cm->model, ns.summary, as_of);
            if (same_result(*prev, ns, stored_form)) {
                // Unchanged now; also unchanged as of the stored time, so the stored row stays exact.
                NewState then = compute_new_state(*cm->model, key, prev, ns.summary, fit.fit, fit.disqualified,
                                                  prev->scored_at, StageMode::Fresh);
                if (same_result(*prev, then, stored_form)) continue;
            }
        }
        if (!prev || prev->score != ns.result.score) score_changes++;
        changed.push_back(std::move(ns));
        if (changed.size() >= 10000) {
            store.write(changed, as_of, notify);
            changed.clear();
        }
        check_for_interrupts();
    }
    store.write(changed, as_of, notify);
    if (leads_scored) *leads_scored = scored;
    return score_changes;
}

std::int64_t refresh_model(const std::string& model, Timestamp as_of) {
    // Lock first: a rule change committed while we waited is seen when the model is loaded.
    StateStore(*get_model(model, true)).lock_for_write();
    std::shared_ptr<CompiledModel> cm = get_model(model, true);
    SpiConnection spi;
    StateStore store(*cm);
    std::vector<StoredState> due = store.read_due(as_of);
    // Summaries pruned past as_of (a refresh as of an earlier time) are rebuilt from raw rows.
    std::vector<std::string> rebuild;
    for (const StoredState& s : due)
        if (s.initialized && !s.summary.exact_at(as_of)) rebuild.push_back(s.key);
    std::map<std::string, Summary> fresh;
    if (!rebuild.empty()) collect_activities(*cm, &rebuild, fresh);
    std::vector<NewState> changed;
    std::int64_t score_changes = 0;
    for (const StoredState& s : due) {
        if (!s.initialized) continue;
        Summary summary = s.summary;
        if (!s.summary.exact_at(as_of)) {
            auto it = fresh.find(s.key);
            summary = it == fresh.end() ? Summary() : std::move(it->second);
        }
        NewState ns = compute_new_state(*cm->model, s.key, &s, std::move(summary), s.fit, s.fit_disqualified, as_of,
                                        StageMode::KeepSticky);
        if (s.score != ns.result.score) score_changes++;
        changed.push_back(std::move(ns));
    }
    store.write(changed, as_of, true);
    return score_changes;
}

}  // namespace leadscore::pg
