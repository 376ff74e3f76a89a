// The state store's direct path: the activity trigger applies a statement's deltas to the
// leads' state rows through the table AM and the key index, without SQL. Rows it cannot
// handle (no state yet, a summary to rebuild, a row deleted meanwhile) go to the SQL path.
#include "pg/recompute.hpp"
#include "pg/relations.hpp"
#include "pg/state_store.hpp"
#include "pg/state_writer.hpp"

extern "C" {
#include "access/genam.h"
#include "access/relscan.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "executor/executor.h"
#include "nodes/makefuncs.h"
#include "utils/array.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
}

namespace leadscore::pg {

void StateStore::key_scan_key(Relation rel, Relation index, const std::vector<std::string>& keys,
                              std::vector<Datum>& key_values, ScanKeyData& skey) {
    const Oid key_type = cm_.tracking->key_type;
    // The key array in the index's own ordering: the scan returns rows in key order, the
    // same order every other writer locks them in.
    StateKeyInfo& ki = cm_.state_key;
    if (!ki.ready) {
        Oid input_fn;
        getTypeInputInfo(key_type, &input_fn, &ki.ioparam);
        fmgr_info_cxt(input_fn, &ki.input, cm_.context ? cm_.context : TopMemoryContext);
        get_typlenbyvalalign(key_type, &ki.typlen, &ki.byval, &ki.align);
        ki.eq_proc = index_equality_proc(index);
        if (!OidIsValid(ki.eq_proc))
            elog(ERROR, "leadscore: no equality operator for the key of \"%s\"", RelationGetRelationName(rel));
        ki.ready = true;
    }
    key_values.clear();
    for (const std::string& k : keys)
        key_values.push_back(InputFunctionCall(&ki.input, const_cast<char*>(k.c_str()), ki.ioparam, -1));
    if (key_values.size() == 1) {
        ScanKeyEntryInitialize(&skey, 0, 1, BTEqualStrategyNumber, InvalidOid, index->rd_indcollation[0], ki.eq_proc,
                               key_values[0]);
        return;
    }
    ArrayType* key_array = construct_array(key_values.data(), static_cast<int>(key_values.size()), key_type,
                                           ki.typlen, ki.byval, ki.align);
    ScanKeyEntryInitialize(&skey, SK_SEARCHARRAY, 1, BTEqualStrategyNumber, key_type, index->rd_indcollation[0],
                           ki.eq_proc, PointerGetDatum(key_array));
}

std::vector<std::string> StateStore::apply_deltas_directly(const DeltaMap& deltas,
                                                           Timestamp as_of, std::vector<StageChange>& stage_changes) {
    std::vector<std::string> slow;
    if (deltas.empty()) return slow;
    const Model& model = *cm_.model;
    const Oid key_type = cm_.tracking->key_type;
    // C++ objects live out here: an ERROR inside pg_guard longjmps past the lambda's frame.
    std::vector<Datum> key_values;
    std::vector<std::string> key_texts;
    std::string key_text, failure, failure_state, bytes;
    StateDatums row;
    StateFields fields;
    // Leads whose state row now holds their deltas.
    std::vector<char> handled(deltas.size(), 0);
    std::uint32_t lead = DeltaMap::npos;
    StoredState stored;
    std::optional<NewState> next;
    key_texts.reserve(deltas.size());
    key_values.reserve(deltas.size());
    for (std::uint32_t i = 0; i < deltas.size(); i++) key_texts.push_back(deltas.key(i));

    pg_guard([&] {
        Relation rel = table_open(relid_, RowExclusiveLock);
        Relation index = open_state_key_index(rel);
        resolve_state_attnums(rel, key_type, cm_.state_attnums);
        const std::vector<std::int16_t>& attnum = cm_.state_attnums;
        MemoryContext scratch = AllocSetContextCreate(CurrentMemoryContext, "leadscore direct", ALLOCSET_DEFAULT_SIZES);
        MemoryContext old = MemoryContextSwitchTo(scratch);

        ScanKeyData skey;
        key_scan_key(rel, index, key_texts, key_values, skey);

        // Rows written earlier in this transaction, and by transactions that committed while
        // we waited for the per-lead locks, are seen.
        CommandCounterIncrement();
        Snapshot snapshot = RegisterSnapshot(GetLatestSnapshot());
        TupleTableSlot* found = table_slot_create(rel, nullptr);
        IndexScanDesc scan = index_beginscan(rel, index, snapshot, 1, 0);
        index_rescan(scan, &skey, 1, nullptr, 0);

        StateRowWriter writer(rel, cm_.state_attnums, snapshot, scratch);
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
                if (found->tts_isnull[attnum[kStateLead] - 1]) break;
                key_out.write(found->tts_values[attnum[kStateLead] - 1], key_text);
                lead = deltas.find(key_text);
                if (lead == DeltaMap::npos || found->tts_isnull[attnum[kStateSummary] - 1]) break;
                for (int c = 0; c < kStateColumnCount; c++) {
                    row.values[c] = found->tts_values[attnum[c] - 1];
                    row.nulls[c] = found->tts_isnull[attnum[c] - 1];
                }
                read_state_fields(row, StateFieldsNeeded::ForDeltas, fields);

                // Scoring is C++ that reports problems by exception: keep it out of this PG_TRY frame.
                next.reset();
                failure.clear();
                failure_state.clear();
                bool decoded = false;
                try {
                    parse_state_fields(row, fields, StateFieldsNeeded::ForDeltas, stored);
                    stored.key = key_text;
                    decoded = true;
                    // A summary pruned by a later transaction than ours, or without a deleted
                    // occurrence, is rebuilt by the SQL path.
                    if (apply_deltas(stored.summary, deltas.added(lead), deltas.removed(lead), as_of)) {
                        next = compute_new_state(model, key_text, &stored, std::move(stored.summary), stored.fit,
                                                 stored.fit_disqualified, as_of, StageMode::Fresh);
                        prune_expired(model, next->summary, as_of);
                        bytes = next->summary.serialize();
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
                if (!next) break;
                const NewState& ns = *next;

                encode_results(ns, bytes, as_of, row);
                // An activity never changes the fit: the stored datum is kept.
                if (ns.result.fit == stored.fit) row.values[kStateFitScore] = found->tts_values[attnum[kStateFitScore] - 1];
                writer.compose(found, row, true, true);
                ItemPointerData target = found->tts_tid;
                TM_FailureData tmfd;
                TM_Result res = writer.update(&target, &tmfd);
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
                if (ns.stage_changed) stage_changes.push_back(StageChange{key_text, ns.previous_stage, ns.result.stage,
                                                                          ns.result.score});
                handled[lead] = 1;
                break;
            }
        }
        MemoryContextSwitchTo(scratch);
        index_endscan(scan);

        ExecDropSingleTupleTableSlot(found);
        writer.finish();
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

}  // namespace leadscore::pg
