// leadscore.engagement_score(model, activity row, as_of): a parallel-safe aggregate whose
// state is the same occurrence summary the triggers store.
#include <algorithm>
#include <cstring>
#include <unordered_set>

#include "core/decimal.hpp"
#include "core/deltas.hpp"
#include "pg/conditions.hpp"
#include "pg/matching.hpp"
#include "pg/model_cache.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "access/htup_details.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"
}

using namespace leadscore;
using namespace leadscore::pg;

namespace {

constexpr unsigned char kEngagementAggStateVersion = 2;

// A group's state is plain data palloc'd in the aggregate context, so hash aggregation
// accounts for its memory and a reset frees it without running destructors. Occurrences are
// appended unsorted and sorted once, in the final function.
struct EngagementAggState {
    const std::string* model;  // interned name; null until the first row
    bool has_as_of;
    Timestamp as_of;
    std::size_t count, capacity;
    Occurrence* items;
};

// Model names used by aggregate states, kept for the backend's life: a state compares and
// stores a pointer. Never destroyed, so no static destruction order at exit.
const std::string* intern_model_name(const char* data, std::size_t len) {
    static auto* names = new std::unordered_set<std::string>();
    return &*names->emplace(data, len).first;
}

EngagementAggState* new_state(MemoryContext aggcontext) {
    EngagementAggState* state = nullptr;
    pg_guard([&] {
        state = static_cast<EngagementAggState*>(MemoryContextAllocZero(aggcontext, sizeof(EngagementAggState)));
    });
    return state;
}

void reserve(EngagementAggState* state, MemoryContext aggcontext, std::size_t needed) {
    if (needed <= state->capacity) return;
    std::size_t capacity = std::max<std::size_t>({8, state->capacity * 2, needed});
    pg_guard([&] {
        const Size bytes = capacity * sizeof(Occurrence);
        state->items = static_cast<Occurrence*>(state->items ? repalloc_huge(state->items, bytes)
                                                                : MemoryContextAllocHuge(aggcontext, bytes));
    });
    state->capacity = capacity;
}

void append(EngagementAggState* state, MemoryContext aggcontext, std::int64_t rule_id, Timestamp t,
            MicroPoints value) {
    if (state->count == state->capacity) reserve(state, aggcontext, state->count + 1);
    state->items[state->count++] = Occurrence{rule_id, t, value};
}

Summary summary_of(const EngagementAggState* state) {
    std::sort(state->items, state->items + state->count, [](const Occurrence& a, const Occurrence& b) {
        if (a.rule_id != b.rule_id) return a.rule_id < b.rule_id;
        return a.time != b.time ? a.time < b.time : a.value < b.value;
    });
    Summary s;
    for (std::size_t i = 0; i < state->count; i++)
        s.add(state->items[i].rule_id, state->items[i].time, state->items[i].value);
    return s;
}

MemoryContext aggregate_context(FunctionCallInfo fcinfo, const char* fname) {
    MemoryContext aggcontext = nullptr;
    if (!AggCheckCallContext(fcinfo, &aggcontext))
        raise(sqlstate::kFeatureNotSupported, std::string(fname) + " called in non-aggregate context");
    return aggcontext;
}

void check_model(EngagementAggState* state, const std::string* model) {
    if (!state->model)
        state->model = model;
    else if (state->model != model)
        raise(sqlstate::kInvalidParameterValue, "leadscore.engagement_score: model must be the same for every row of a group");
}

}  // namespace

namespace {

// Lookups shared by every group of one aggregate call site (kept in fn_extra), so a row
// costs one deform and one match: no name lookups, no per-row allocations.
struct CallSiteCache {
    std::string model;
    const std::string* interned = nullptr;
    std::uint64_t generation = 0;
    std::shared_ptr<CompiledModel> cm;
    const Matcher* matcher = nullptr;
    std::optional<RowLayout> layout;
    Oid row_type = InvalidOid;
    std::int32_t row_typmod = -1;
    TupleDesc desc = nullptr;  // a copy in fn_mcxt
    bool argument_checked = false;
    std::vector<Datum> values;
    std::vector<char> nulls;
    ActivityMatch match;
    // Lead rows read by key, for models whose activity rules read the lead.
    LeadFactsMap facts;
    LeadConditions lead;
};

// Points the cache at a model (by name), compiled as of the current rule generation.
void load_model(CallSiteCache& cache, const char* name, std::size_t len) {
    cache.model.assign(name, len);
    cache.cm = get_model(cache.model, true);
    cache.interned = intern_model_name(name, len);
    cache.generation = cache_generation();
    cache.matcher = nullptr;
    cache.facts.clear();
    CallSiteCache* c = &cache;
    cache.lead = [c](const std::string& key) -> const std::vector<char>& {
        auto it = c->facts.find(key);
        if (it == c->facts.end()) {
            const std::vector<std::string> keys = {key};
            {
                SpiConnection spi;
                collect_fits(*c->cm, &keys, c->facts, LeadRead::ActivityConditions);
            }
            it = c->facts.find(key);
            if (it == c->facts.end()) it = c->facts.emplace(key, FitFacts{0, false, {}, c->cm->absent_lead_conditions}).first;
        }
        return it->second.conditions;
    };
}

CallSiteCache& call_site_cache(FunctionCallInfo fcinfo) {
    if (!fcinfo->flinfo->fn_extra)
        fcinfo->flinfo->fn_extra = new_owned_by_context<CallSiteCache>(fcinfo->flinfo->fn_mcxt);
    return *static_cast<CallSiteCache*>(fcinfo->flinfo->fn_extra);
}

}  // namespace

LEADSCORE_FUNCTION(leadscore_engagement_transition) {
    MemoryContext aggcontext = aggregate_context(fcinfo, "leadscore.engagement_transition");
    EngagementAggState* state = PG_ARGISNULL(0) ? nullptr : reinterpret_cast<EngagementAggState*>(PG_GETARG_POINTER(0));
    if (!state) state = new_state(aggcontext);
    if (PG_ARGISNULL(1)) raise(sqlstate::kInvalidParameterValue, "leadscore.engagement_score: model must not be NULL");
    if (PG_ARGISNULL(2)) PG_RETURN_POINTER(state);
    CallSiteCache& cache = call_site_cache(fcinfo);

    const char* model_data = nullptr;
    std::size_t model_len = 0;
    HeapTupleHeader header = nullptr;
    pg_guard([&] {
        text* t = PG_GETARG_TEXT_PP(1);
        model_data = VARDATA_ANY(t);
        model_len = VARSIZE_ANY_EXHDR(t);
        if (!cache.argument_checked) {
            Oid arg_type = get_fn_expr_argtype(fcinfo->flinfo, 2);
            if (!type_is_rowtype(arg_type))
                ereport(ERROR,
                        (errcode(ERRCODE_DATATYPE_MISMATCH),
                         errmsg("leadscore.engagement_score: the activity argument must be a whole row"),
                         errhint("Pass the table alias, e.g. engagement_score('model', a, now()) FROM activities a.")));
            cache.argument_checked = true;
        }
        header = PG_GETARG_HEAPTUPLEHEADER(2);
    });
    if (cache.model.size() != model_len || cache.model.compare(0, model_len, model_data, model_len) != 0 ||
        cache.generation != cache_generation())
        load_model(cache, model_data, model_len);
    check_model(state, cache.interned);
    if (!PG_ARGISNULL(3) && !state->has_as_of) {
        state->as_of = PG_GETARG_TIMESTAMPTZ(3);
        state->has_as_of = true;
    }

    const Oid type_id = HeapTupleHeaderGetTypeId(header);
    const std::int32_t typmod = HeapTupleHeaderGetTypMod(header);
    if (!cache.matcher || cache.row_type != type_id || cache.row_typmod != typmod) {
        TupleDesc desc = nullptr;
        pg_guard([&] {
            TupleDesc shared = lookup_rowtype_tupdesc(type_id, typmod);
            MemoryContext old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
            desc = CreateTupleDescCopy(shared);
            MemoryContextSwitchTo(old);
            ReleaseTupleDesc(shared);
        });
        cache.matcher = &matcher_for_rowtype(*cache.cm, desc, type_id, typmod);
        cache.layout = activity_layout(*cache.cm, desc, *cache.matcher, cache.cm->activity_reads_lead);
        cache.desc = desc;
        cache.row_type = type_id;
        cache.row_typmod = typmod;
        cache.values.assign(desc->natts, 0);
        cache.nulls.assign(desc->natts, 0);
    }
    bool* nulls = reinterpret_cast<bool*>(cache.nulls.data());
    pg_guard([&] {
        HeapTupleData tuple;
        tuple.t_len = HeapTupleHeaderGetDatumLength(header);
        ItemPointerSetInvalid(&tuple.t_self);
        tuple.t_tableOid = InvalidOid;
        tuple.t_data = header;
        heap_deform_tuple(&tuple, cache.desc, cache.values.data(), nulls);
    });
    if (match_activity_row(*cache.cm, *cache.matcher, *cache.layout, cache.values.data(), nulls, cache.match,
                           &cache.lead))
        for (std::size_t i = 0; i < cache.match.rules.size(); i++)
            append(state, aggcontext, cache.match.rules[i], cache.match.time, cache.match.values[i]);
    PG_RETURN_POINTER(state);
}

LEADSCORE_FUNCTION(leadscore_engagement_combine) {
    MemoryContext aggcontext = aggregate_context(fcinfo, "leadscore.engagement_combine");
    EngagementAggState* a = PG_ARGISNULL(0) ? nullptr : reinterpret_cast<EngagementAggState*>(PG_GETARG_POINTER(0));
    EngagementAggState* b = PG_ARGISNULL(1) ? nullptr : reinterpret_cast<EngagementAggState*>(PG_GETARG_POINTER(1));
    if (!b) {
        if (a) PG_RETURN_POINTER(a);
        PG_RETURN_NULL();
    }
    if (!a) a = new_state(aggcontext);
    if (b->model) check_model(a, b->model);
    if (!a->has_as_of && b->has_as_of) {
        a->as_of = b->as_of;
        a->has_as_of = true;
    }
    reserve(a, aggcontext, a->count + b->count);
    if (b->count) std::memcpy(a->items + a->count, b->items, b->count * sizeof(Occurrence));
    a->count += b->count;
    PG_RETURN_POINTER(a);
}

// Serialized form: version byte, model name length and bytes, as_of flag and value, then the
// occurrences in the compact summary encoding.
LEADSCORE_FUNCTION(leadscore_engagement_serialize) {
    aggregate_context(fcinfo, "leadscore.engagement_serialize");
    EngagementAggState* state = reinterpret_cast<EngagementAggState*>(PG_GETARG_POINTER(0));
    std::string out;
    out.push_back(static_cast<char>(kEngagementAggStateVersion));
    const std::string empty;
    const std::string& model = state->model ? *state->model : empty;
    const std::uint32_t model_len = static_cast<std::uint32_t>(model.size());
    out.append(reinterpret_cast<const char*>(&model_len), sizeof(model_len));
    out += model;
    out.push_back(state->has_as_of ? 1 : 0);
    const Timestamp as_of = state->has_as_of ? state->as_of : 0;
    out.append(reinterpret_cast<const char*>(&as_of), sizeof(as_of));
    out += summary_of(state).serialize();
    bytea* result = nullptr;
    pg_guard([&] {
        result = static_cast<bytea*>(palloc(VARHDRSZ + out.size()));
        SET_VARSIZE(result, VARHDRSZ + out.size());
        std::memcpy(VARDATA(result), out.data(), out.size());
    });
    PG_RETURN_BYTEA_P(result);
}

LEADSCORE_FUNCTION(leadscore_engagement_deserialize) {
    MemoryContext aggcontext = aggregate_context(fcinfo, "leadscore.engagement_deserialize");
    const unsigned char* data = nullptr;
    std::size_t len = 0;
    pg_guard([&] {
        bytea* b = PG_GETARG_BYTEA_PP(0);
        data = reinterpret_cast<const unsigned char*>(VARDATA_ANY(b));
        len = VARSIZE_ANY_EXHDR(b);
    });
    auto corrupt = [] { raise(sqlstate::kDataCorrupted, "leadscore: engagement aggregate state is corrupted"); };
    if (len < 1 + 4 + 1 + 8 || data[0] != kEngagementAggStateVersion) corrupt();
    std::uint32_t model_len;
    std::memcpy(&model_len, data + 1, sizeof(model_len));
    if (len < 1 + 4 + static_cast<std::size_t>(model_len) + 1 + 8) corrupt();
    EngagementAggState* state = new_state(aggcontext);
    std::size_t pos = 5;
    if (model_len > 0) state->model = intern_model_name(reinterpret_cast<const char*>(data + pos), model_len);
    pos += model_len;
    state->has_as_of = data[pos++] != 0;
    std::memcpy(&state->as_of, data + pos, sizeof(state->as_of));
    pos += sizeof(state->as_of);
    const Summary summary = Summary::deserialize(data + pos, len - pos);
    reserve(state, aggcontext, summary.occurrence_count());
    for (const RuleOccurrences& r : summary.rules())
        for (std::size_t i = 0; i < r.times.size(); i++)
            state->items[state->count++] = Occurrence{r.rule_id, r.times[i], r.values.empty() ? kNoValue : r.values[i]};
    PG_RETURN_POINTER(state);
}

LEADSCORE_FUNCTION(leadscore_engagement_final) {
    aggregate_context(fcinfo, "leadscore.engagement_final");
    if (PG_ARGISNULL(0)) PG_RETURN_NULL();
    EngagementAggState* state = reinterpret_cast<EngagementAggState*>(PG_GETARG_POINTER(0));
    if (!state->model) PG_RETURN_NULL();
    // The final function's own call-site cache: one model lookup per call site, not per group.
    CallSiteCache& cache = call_site_cache(fcinfo);
    if (cache.interned != state->model || cache.generation != cache_generation())
        load_model(cache, state->model->data(), state->model->size());
    std::shared_ptr<CompiledModel> cm = cache.cm;
    const Timestamp as_of = state->has_as_of ? state->as_of : transaction_now();
    EngagementResult e = compute_engagement(*cm->model, summary_of(state), as_of, false);
    return points_to_numeric(e.engagement);
}
