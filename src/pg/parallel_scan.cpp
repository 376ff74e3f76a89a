// The activity table read by parallel workers: a ParallelContext whose workers load the same
// model, scan their share of the blocks (a parallel table scan), match each row and send
// their partial summaries to the leader through a shm_mq; the leader scans too and merges.
#include <cstring>
#include <functional>
#include <unistd.h>
#include <memory>
#include <vector>

#include "core/summary_builder.hpp"
#include "pg/model_cache.hpp"
#include "pg/parallel_scan.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "access/parallel.h"
#include "access/relscan.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_am_d.h"
#include "catalog/pg_class.h"
#include "catalog/pg_proc.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "optimizer/cost.h"
#include "optimizer/optimizer.h"
#include "optimizer/paths.h"
#include "storage/bufmgr.h"
#include "storage/shm_mq.h"
#include "storage/shm_toc.h"
#include "utils/acl.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

PGDLLEXPORT void leadscore_scan_worker(dsm_segment* seg, shm_toc* toc);
}

namespace leadscore::pg {

namespace {

constexpr std::uint64_t kKeyHeader = 1;
constexpr std::uint64_t kKeyModel = 2;
constexpr std::uint64_t kKeyScan = 3;
constexpr std::uint64_t kKeyQueues = 4;
constexpr std::uint64_t kKeyFacts = 5;
constexpr Size kQueueSize = Size{1} << 20;
// A worker sends its summaries in messages of about this size.
constexpr std::size_t kMessageSize = std::size_t{256} << 10;

struct ScanHeader {
    Oid activities;
    // What the leader's activity rules match: a worker that loads other rules stops.
    std::uint64_t fingerprint;
    Size facts_size;
};

void put_condition(std::string& out, const ConditionSpec& c) {
    out += c.attribute;
    out += '\x1f';
    out += std::to_string(c.op ? static_cast<int>(*c.op) : -1);
    for (const auto& v : c.values) {
        out += '\x1f';
        out += v ? *v : std::string("\x1e");
    }
    out += '\x1d';
}

// A hash of everything about the activity rules that decides what a row matches.
std::uint64_t matching_fingerprint(const Model& model) {
    std::string text;
    for (const ActivityRuleSpec& r : model.activity_rules()) {
        text += std::to_string(r.id) + '\x1f' + r.activity_type + '\x1f' + r.multiply_by + '\x1f' +
                std::to_string(r.points) + '\x1f';
        put_condition(text, r.condition);
        for (const ConditionRowSpec& c : r.conditions) {
            text += std::to_string(c.grp);
            put_condition(text, c.condition);
        }
        text += '\x1c';
    }
    return std::hash<std::string>()(text);
}

void put_u32(std::string& out, std::size_t n) {
    const std::uint32_t v = static_cast<std::uint32_t>(n);
    out.append(reinterpret_cast<const char*>(&v), sizeof v);
}

std::uint32_t get_u32(const char*& p, const char* end) {
    std::uint32_t v;
    if (static_cast<std::size_t>(end - p) < sizeof v) raise(sqlstate::kInternalError, "leadscore: truncated parallel scan message");
    std::memcpy(&v, p, sizeof v);
    p += sizeof v;
    return v;
}

std::string_view get_bytes(const char*& p, const char* end) {
    const std::uint32_t n = get_u32(p, end);
    if (static_cast<std::size_t>(end - p) < n) raise(sqlstate::kInternalError, "leadscore: truncated parallel scan message");
    std::string_view v(p, n);
    p += n;
    return v;
}

// The leads' lead-side condition results, for workers (they do not read the leads again).
std::string serialize_facts(const LeadFactsMap& facts) {
    std::string out;
    for (const auto& [key, f] : facts) {
        put_u32(out, key.size());
        out += key;
        put_u32(out, f.conditions.size());
        out.append(f.conditions.data(), f.conditions.size());
    }
    return out;
}

LeadFactsMap deserialize_facts(const char* p, std::size_t n) {
    LeadFactsMap facts;
    const char* end = p + n;
    while (p < end) {
        std::string_view key = get_bytes(p, end);
        std::string_view conditions = get_bytes(p, end);
        facts[std::string(key)].conditions.assign(conditions.begin(), conditions.end());
    }
    return facts;
}

bool parallel_safe(Oid fn) { return !OidIsValid(fn) || func_parallel(fn) == PROPARALLEL_SAFE; }

bool output_parallel_safe(Oid type) {
    Oid fn;
    bool varlena;
    getTypeOutputInfo(type, &fn, &varlena);
    return parallel_safe(fn);
}

// How many workers to plan for a parallel scan of rel, at most max_parallel_workers_per_gather:
// the table's parallel_workers option, or as PostgreSQL's compute_parallel_worker does for a
// heap (one from min_parallel_table_scan_size, one more each time the size triples) and no
// more than the CPUs left beside the leader. Inside pg_guard.
int planned_workers(Relation rel) {
    if (max_parallel_workers_per_gather <= 0) return 0;
    int workers = RelationGetParallelWorkers(rel, -1);
    // The table's option is the user's choice: used as given.
    if (workers >= 0) return Min(workers, max_parallel_workers_per_gather);
    const BlockNumber pages = RelationGetNumberOfBlocks(rel);
    BlockNumber threshold = static_cast<BlockNumber>(Max(min_parallel_table_scan_size, 1));
    if (pages < static_cast<BlockNumber>(min_parallel_table_scan_size)) return 0;
    workers = 1;
    while (pages >= threshold * 3 && threshold < MaxBlockNumber / 3) {
        workers++;
        threshold *= 3;
    }
    workers = Min(workers, max_parallel_workers_per_gather);
    // Matching is CPU work: more processes than CPUs only take turns (the leader scans too).
    const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (cpus > 0) workers = Min(workers, static_cast<int>(cpus) - (parallel_leader_participation ? 1 : 0));
    return Max(workers, 0);
}

// Whether rel read through the table AM gives what the SQL query over it gives. Inside pg_guard.
bool plain_readable_table(Relation rel) {
    const Form_pg_class c = rel->rd_rel;
    return c->relkind == RELKIND_RELATION && c->relam == HEAP_TABLE_AM_OID &&
           c->relpersistence != RELPERSISTENCE_TEMP && !c->relrowsecurity &&
           !c->relhassubclass && pg_class_aclcheck(RelationGetRelid(rel), GetUserId(), ACL_SELECT) == ACLCHECK_OK;
}

// Whether every function matching calls may run in a parallel worker. Inside pg_guard.
bool matching_parallel_safe(const CompiledModel& cm, const RowLayout& layout) {
    for (const CompiledCondition& c : cm.activity_matcher->conditions)
        if (!parallel_safe(c.fn.fn_oid) || !parallel_safe(c.fn_upper.fn_oid) || !parallel_safe(c.out_fn.fn_oid))
            return false;
    return output_parallel_safe(layout.key_type) && output_parallel_safe(layout.type_type);
}

// One participant's share of the scan, matched into builder.
void scan_share(const CompiledModel& cm, Relation rel, ParallelTableScanDesc pscan, const RowLayout& layout,
                const LeadConditions* lead, SummaryBuilder& builder) {
    TableScanDesc scan = nullptr;
    TupleTableSlot* slot = nullptr;
    MemoryContext rows = nullptr, caller = CurrentMemoryContext;
    int last_attno = Max(layout.lead, Max(layout.type, layout.time));
    for (int a : layout.columns) last_attno = Max(last_attno, a);
    pg_guard([&] {
        // (Output functions keep their state where they were looked up: not in the reset context.)
        layout.key_text.prepare(CurrentMemoryContext);
        layout.type_text.prepare(CurrentMemoryContext);
        scan = table_beginscan_parallel(rel, pscan);
        slot = table_slot_create(rel, nullptr);
        // What the output and condition functions allocate for a row goes with the next reset.
        rows = AllocSetContextCreate(CurrentMemoryContext, "leadscore parallel scan rows", ALLOCSET_DEFAULT_SIZES);
    });
    ActivityMatch match;
    std::string last_key;
    std::uint32_t last = 0;
    bool have_last = false, found = false;
    std::uint64_t n = 0;
    for (;;) {
        pg_guard([&] {
            if ((n & 1023) == 0) MemoryContextReset(rows);
            MemoryContextSwitchTo(rows);
            found = table_scan_getnextslot(scan, ForwardScanDirection, slot);
            if (found) slot_getsomeattrs(slot, last_attno);
        });
        if (!found) break;
        n++;
        const bool matched = match_activity_row(cm, *cm.activity_matcher, layout, slot->tts_values, slot->tts_isnull,
                                                match, lead);
        MemoryContextSwitchTo(caller);
        if (!matched || match.rules.empty()) continue;
        if (!have_last || match.key != last_key) {
            last = builder.lead(match.key);
            last_key = match.key;
            have_last = true;
        }
        for (std::size_t i = 0; i < match.rules.size(); i++) builder.add(last, match.rules[i], match.time, match.values[i]);
        if ((n & 4095) == 0) check_for_interrupts();
    }
    MemoryContextSwitchTo(caller);
    builder.flush();
    pg_guard([&] {
        ExecDropSingleTupleTableSlot(slot);
        table_endscan(scan);
        MemoryContextDelete(rows);
    });
}

dsm_segment* worker_segment = nullptr;
shm_toc* worker_toc = nullptr;

Datum run_worker(FunctionCallInfo) {
    const ScanHeader* header = nullptr;
    // The rules' model, and the tracked model whose tables it reads (a draft scored on them).
    const char* model_name = nullptr;
    const char* tables_from = nullptr;
    const char* facts_bytes = nullptr;
    ParallelTableScanDesc pscan = nullptr;
    shm_mq_handle* queue = nullptr;
    pg_guard([&] {
        header = static_cast<const ScanHeader*>(shm_toc_lookup(worker_toc, kKeyHeader, false));
        model_name = static_cast<const char*>(shm_toc_lookup(worker_toc, kKeyModel, false));
        tables_from = model_name + std::strlen(model_name) + 1;
        pscan = static_cast<ParallelTableScanDesc>(shm_toc_lookup(worker_toc, kKeyScan, false));
        facts_bytes = static_cast<const char*>(shm_toc_lookup(worker_toc, kKeyFacts, true));
        char* queues = static_cast<char*>(shm_toc_lookup(worker_toc, kKeyQueues, false));
        shm_mq* mq = reinterpret_cast<shm_mq*>(queues + static_cast<Size>(ParallelWorkerNumber) * kQueueSize);
        shm_mq_set_sender(mq, MyProc);
        queue = shm_mq_attach(mq, worker_segment, nullptr);
    });
    SpiConnection spi;
    std::shared_ptr<CompiledModel> cm = get_model_on_tables(model_name, tables_from);
    if (matching_fingerprint(*cm->model) != header->fingerprint)
        raise(sqlstate::kInternalError, "leadscore: a parallel worker loaded another version of model \"" +
                                            std::string(model_name) + "\"");
    LeadFactsMap facts;
    if (facts_bytes) facts = deserialize_facts(facts_bytes, header->facts_size);
    const LeadConditions lead = cm->activity_reads_lead ? lead_conditions_from(*cm, facts) : LeadConditions();
    Relation rel = nullptr;
    pg_guard([&] { rel = table_open(header->activities, AccessShareLock); });
    const RowLayout layout = activity_layout(*cm, RelationGetDescr(rel), *cm->activity_matcher);
    SummaryBuilder builder;
    scan_share(*cm, rel, pscan, layout, cm->activity_reads_lead ? &lead : nullptr, builder);
    std::string message;
    auto send = [&] {
        shm_mq_result result = SHM_MQ_SUCCESS;
        pg_guard([&] { result = shm_mq_send(queue, message.size(), message.data(), false, true); });
        // The leader went away (its own error): nothing to deliver.
        if (result != SHM_MQ_SUCCESS) raise(sqlstate::kInternalError, "leadscore: the parallel scan's leader detached");
        message.clear();
    };
    for (std::uint32_t i = 0; i < builder.size(); i++) {
        const std::string bytes = builder.summary(i).serialize();
        put_u32(message, builder.key(i).size());
        message += builder.key(i);
        put_u32(message, bytes.size());
        message += bytes;
        if (message.size() >= kMessageSize) send();
    }
    if (!message.empty()) send();
    pg_guard([&] {
        table_close(rel, AccessShareLock);
        shm_mq_detach(queue);
    });
    return Datum(0);
}

}  // namespace

bool collect_activities_in_parallel(const CompiledModel& cm, const LeadFactsMap* facts,
                                    std::map<std::string, Summary>& out) {
    const TrackingInfo& t = *cm.tracking;
    if (t.distributed || t.on_shard || !IsUnderPostmaster || max_parallel_workers_per_gather <= 0) return false;
    if (cm.activity_reads_lead && !facts) return false;
    Relation rel = nullptr;
    int workers = 0;
    pg_guard([&] {
        if (IsInParallelMode()) return;
        rel = table_open(t.activities, AccessShareLock);
        if (plain_readable_table(rel)) workers = planned_workers(rel);
    });
    std::optional<RowLayout> layout;
    if (workers > 0) {
        layout = activity_layout(cm, RelationGetDescr(rel), *cm.activity_matcher);
        pg_guard([&] {
            if (!matching_parallel_safe(cm, *layout)) workers = 0;
        });
    }
    if (workers == 0) {
        if (rel) pg_guard([&] { table_close(rel, AccessShareLock); });
        return false;
    }

    const std::string facts_blob = cm.activity_reads_lead ? serialize_facts(*facts) : std::string();
    const std::string& model = cm.model->spec().name;
    // Both names, each ended by a zero byte.
    const std::string names = model + std::string(1, '\0') + t.tables_from + std::string(1, '\0');
    const std::uint64_t fingerprint = matching_fingerprint(*cm.model);
    ParallelContext* pcxt = nullptr;
    std::vector<shm_mq_handle*> queues(static_cast<std::size_t>(workers), nullptr);
    int launched = 0;
    Snapshot snapshot = nullptr;
    pg_guard([&] {
        // A fresh snapshot after the caller's own writes, as the SQL path's query would take.
        CommandCounterIncrement();
        PushActiveSnapshot(GetTransactionSnapshot());
        snapshot = GetActiveSnapshot();
        EnterParallelMode();
        pcxt = CreateParallelContext("$libdir/leadscore", "leadscore_scan_worker", workers);
        const Size scan_size = table_parallelscan_estimate(rel, snapshot);
        shm_toc_estimate_chunk(&pcxt->estimator, sizeof(ScanHeader));
        shm_toc_estimate_chunk(&pcxt->estimator, names.size());
        shm_toc_estimate_chunk(&pcxt->estimator, scan_size);
        shm_toc_estimate_chunk(&pcxt->estimator, kQueueSize * static_cast<Size>(workers));
        int keys = 4;
        if (!facts_blob.empty()) {
            shm_toc_estimate_chunk(&pcxt->estimator, facts_blob.size());
            keys++;
        }
        shm_toc_estimate_keys(&pcxt->estimator, keys);
        InitializeParallelDSM(pcxt);
        // No dynamic shared memory to be had: the leader reads the whole table.
        if (!pcxt->seg) return;

        ScanHeader* header = static_cast<ScanHeader*>(shm_toc_allocate(pcxt->toc, sizeof(ScanHeader)));
        header->activities = RelationGetRelid(rel);
        header->fingerprint = fingerprint;
        header->facts_size = facts_blob.size();
        shm_toc_insert(pcxt->toc, kKeyHeader, header);
        char* name = static_cast<char*>(shm_toc_allocate(pcxt->toc, names.size()));
        std::memcpy(name, names.data(), names.size());
        shm_toc_insert(pcxt->toc, kKeyModel, name);
        ParallelTableScanDesc pscan = static_cast<ParallelTableScanDesc>(shm_toc_allocate(pcxt->toc, scan_size));
        table_parallelscan_initialize(rel, pscan, snapshot);
        shm_toc_insert(pcxt->toc, kKeyScan, pscan);
        if (!facts_blob.empty()) {
            char* f = static_cast<char*>(shm_toc_allocate(pcxt->toc, facts_blob.size()));
            std::memcpy(f, facts_blob.data(), facts_blob.size());
            shm_toc_insert(pcxt->toc, kKeyFacts, f);
        }
        char* area = static_cast<char*>(shm_toc_allocate(pcxt->toc, kQueueSize * static_cast<Size>(workers)));
        for (int i = 0; i < workers; i++) {
            shm_mq* mq = shm_mq_create(area + static_cast<Size>(i) * kQueueSize, kQueueSize);
            shm_mq_set_receiver(mq, MyProc);
            queues[static_cast<std::size_t>(i)] = shm_mq_attach(mq, pcxt->seg, nullptr);
        }
        shm_toc_insert(pcxt->toc, kKeyQueues, area);
        LaunchParallelWorkers(pcxt);
        launched = pcxt->nworkers_launched;
        // A worker that dies or never starts detaches its queue.
        for (int i = 0; i < launched; i++) shm_mq_set_handle(queues[static_cast<std::size_t>(i)], pcxt->worker[i].bgwhandle);
    });

    ParallelTableScanDesc pscan = nullptr;
    if (pcxt->seg) {
        pg_guard([&] { pscan = static_cast<ParallelTableScanDesc>(shm_toc_lookup(pcxt->toc, kKeyScan, false)); });
    } else {
        // Without shared memory: the same scan descriptor in local memory, for the leader alone.
        pg_guard([&] {
            pscan = static_cast<ParallelTableScanDesc>(palloc0(table_parallelscan_estimate(rel, snapshot)));
            table_parallelscan_initialize(rel, pscan, snapshot);
        });
    }
    // The leader's own summaries, then the workers' merged in (found by the builder's hash).
    SummaryBuilder builder;
    if (launched == 0 || parallel_leader_participation) {
        const LeadConditions lead = cm.activity_reads_lead ? lead_conditions_from(cm, *facts) : LeadConditions();
        scan_share(cm, rel, pscan, *layout, cm.activity_reads_lead ? &lead : nullptr, builder);
    }
    for (int i = 0; i < launched; i++) {
        for (;;) {
            shm_mq_result result = SHM_MQ_SUCCESS;
            Size n = 0;
            void* data = nullptr;
            pg_guard([&] { result = shm_mq_receive(queues[static_cast<std::size_t>(i)], &n, &data, false); });
            if (result != SHM_MQ_SUCCESS) break;
            const char* p = static_cast<const char*>(data);
            const char* end = p + n;
            while (p < end) {
                std::string_view key = get_bytes(p, end);
                std::string_view bytes = get_bytes(p, end);
                builder.summary(builder.lead(key))
                    .merge(Summary::deserialize(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size()));
            }
        }
    }
    move_summaries(builder, out);
    pg_guard([&] {
        // Raises a worker's error here, after what it sent was merged or not.
        WaitForParallelWorkersToFinish(pcxt);
        ereport(DEBUG1, (errmsg_internal("leadscore: model \"%s\" read %s with %d parallel workers (%d planned)",
                                         model.c_str(), RelationGetRelationName(rel), launched, workers)));
        DestroyParallelContext(pcxt);
        ExitParallelMode();
        PopActiveSnapshot();
        table_close(rel, AccessShareLock);
    });
    return true;
}

}  // namespace leadscore::pg

void leadscore_scan_worker(dsm_segment* seg, shm_toc* toc) {
    leadscore::pg::worker_segment = seg;
    leadscore::pg::worker_toc = toc;
    leadscore::pg::call_boundary(leadscore::pg::run_worker, nullptr);
}
