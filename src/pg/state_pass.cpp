// A rule edit's pass over the state table through the table AM: each stored row read, its
// new state decided by the edit and written in place, without SQL (no cursor copies, no
// arrays to unnest, no key lookups for the update). The edit holds the model's exclusive
// state lock, so no other writer moves a row under the pass.
#include <exception>
#include <unordered_set>

#include "pg/state_store.hpp"
#include "pg/state_writer.hpp"

extern "C" {
#include "access/genam.h"
#include "access/heapam.h"
#include "access/relscan.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "storage/bufmgr.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
}

namespace leadscore::pg {

namespace {

// Above this share of the table's rows, the keys are found by reading every row.
constexpr double kIndexedKeysShare = 0.2;
constexpr double kRowsPerPage = 20;

}  // namespace

std::vector<std::string> StateStore::rewrite_each(const std::vector<std::string>* keys, bool with_summary,
                                                  const PassDecide& decide, Timestamp as_of) {
    std::vector<std::string> deferred;
    if (keys && keys->empty()) return deferred;
    const Model& model = *cm_.model;
    // C++ objects live out here: an ERROR inside pg_guard longjmps past the lambda's frame.
    std::vector<Datum> key_values;
    std::unordered_set<std::string> wanted;
    std::string key_text, bytes;
    StateDatums row;
    StateFields fields;
    StoredState stored;
    NewState next;
    std::vector<StageChange> changes;
    std::exception_ptr failure;
    bool by_index = false;
    if (keys) {
        wanted.insert(keys->begin(), keys->end());
        // (Sized here: key_scan_key fills it inside pg_guard, where it must not grow.)
        key_values.reserve(keys->size());
    }

    pg_guard([&] {
        Relation rel = table_open(relid_, RowExclusiveLock);
        resolve_state_attnums(rel, cm_.tracking->key_type, cm_.state_attnums);
        const std::vector<std::int16_t>& attnum = cm_.state_attnums;
        Relation index = nullptr;
        if (keys) {
            // (A table never analyzed: about kRowsPerPage state rows a page.)
            const double rows = rel->rd_rel->reltuples >= 0
                                    ? rel->rd_rel->reltuples
                                    : static_cast<double>(RelationGetNumberOfBlocks(rel)) * kRowsPerPage;
            by_index = static_cast<double>(keys->size()) <= kIndexedKeysShare * rows;
            if (by_index) index = open_state_key_index(rel);
        }
        MemoryContext scratch = AllocSetContextCreate(CurrentMemoryContext, "leadscore pass", ALLOCSET_DEFAULT_SIZES);
        MemoryContext old = MemoryContextSwitchTo(scratch);
        ScanKeyData skey;
        if (by_index) key_scan_key(rel, index, *keys, key_values, skey);

        // Every row as of now (writers are locked out): this transaction's earlier writes are
        // seen, the versions this pass writes are not (they carry the command id the snapshot
        // stops before). Under REPEATABLE READ, a row another transaction wrote after this
        // one's snapshot (seen neither by the edit's reads nor by a rescore) is a serialization
        // failure, not a row left scored by the old rules; the transaction's own writes are
        // visible to its snapshot once the command counter moved.
        CommandCounterIncrement();
        Snapshot snapshot = RegisterSnapshot(GetLatestSnapshot());
        const Snapshot transaction = IsolationUsesXactSnapshot() ? GetTransactionSnapshot() : nullptr;
        TupleTableSlot* found = table_slot_create(rel, nullptr);
        IndexScanDesc iscan = nullptr;
        TableScanDesc sscan = nullptr;
        if (by_index) {
            iscan = index_beginscan(rel, index, snapshot, 1, 0);
            index_rescan(iscan, &skey, 1, nullptr, 0);
        } else {
            sscan = table_beginscan(rel, snapshot, 0, nullptr);
        }
        StateRowWriter writer(rel, attnum, snapshot, scratch);
        const TextOutput key_out(cm_.tracking->key_type);
        MemoryContext per_row = AllocSetContextCreate(scratch, "leadscore pass row", ALLOCSET_DEFAULT_SIZES);
        for (;;) {
            MemoryContextSwitchTo(scratch);
            const bool got = by_index ? index_getnext_slot(iscan, ForwardScanDirection, found)
                                      : table_scan_getnextslot(sscan, ForwardScanDirection, found);
            if (!got) break;
            CHECK_FOR_INTERRUPTS();
            MemoryContextReset(per_row);
            MemoryContextSwitchTo(per_row);
            slot_getallattrs(found);
            if (found->tts_isnull[attnum[kStateLead] - 1]) continue;
            if (transaction && !table_tuple_satisfies_snapshot(rel, found, transaction))
                ereport(ERROR, (errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
                                errmsg("could not serialize access due to concurrent update"),
                                errdetail("leadscore: a state row of model \"%s\" changed after this transaction's "
                                          "snapshot.",
                                          cm_.tracking->model.c_str())));
            if (keys && !by_index) {
                key_out.write(found->tts_values[attnum[kStateLead] - 1], key_text);
                if (!wanted.count(key_text)) continue;
            }
            for (int c = 0; c < kStateColumnCount; c++) {
                row.values[c] = found->tts_values[attnum[c] - 1];
                row.nulls[c] = found->tts_isnull[attnum[c] - 1];
            }
            const bool has_summary = !row.nulls[kStateSummary];
            if (!with_summary) row.nulls[kStateSummary] = true;
            read_state_fields(row, StateFieldsNeeded::All, fields);

            // The edit's decision is C++ that reports problems by exception: caught here, thrown
            // again once the scan is closed.
            PassVerdict verdict = PassVerdict::Keep;
            try {
                try {
                    parse_state_fields(row, fields, StateFieldsNeeded::All, stored);
                } catch (const std::exception& e) {
                    throw UserError(sqlstate::kDataCorrupted, "leadscore: stored state of lead " +
                                                                  std::string(fields.key ? fields.key : "?") +
                                                                  " is unreadable: " + e.what());
                }
                if (!with_summary) stored.initialized = has_summary;
                verdict = decide(stored, next);
                bytes.clear();
                if (verdict == PassVerdict::WriteWhole) bytes = stored_summary(model, next.summary, as_of).serialize();
                if (verdict == PassVerdict::Defer) deferred.push_back(stored.key);
                if (next.stage_changed && verdict != PassVerdict::Keep && verdict != PassVerdict::Defer)
                    changes.push_back(StageChange{next.key, next.previous_stage, next.result.stage, next.result.score});
            } catch (...) {
                failure = std::current_exception();
                break;
            }
            if (verdict == PassVerdict::Keep || verdict == PassVerdict::Defer) continue;

            encode_results(next, bytes, as_of, row);
            writer.compose(found, row, verdict == PassVerdict::WriteWhole,
                           verdict != PassVerdict::WriteResultsKeepScoredAt);
            ItemPointerData target = found->tts_tid;
            TM_FailureData tmfd;
            const TM_Result res = writer.update(&target, &tmfd);
            // (Writers are locked out: another result is a bug, not a race.)
            if (res != TM_Ok)
                ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR),
                                errmsg("leadscore: could not update the state row of lead %s (result %d)",
                                       fields.key ? fields.key : "?", static_cast<int>(res))));
        }
        MemoryContextSwitchTo(scratch);
        if (iscan) index_endscan(iscan);
        if (sscan) table_endscan(sscan);
        ExecDropSingleTupleTableSlot(found);
        writer.finish();
        UnregisterSnapshot(snapshot);
        MemoryContextSwitchTo(old);
        MemoryContextDelete(scratch);
        if (index) index_close(index, NoLock);
        table_close(rel, NoLock);
        // Later commands of this transaction see the new state.
        CommandCounterIncrement();
    });
    if (failure) std::rethrow_exception(failure);
    record_stage_changes(changes, as_of, true);
    return deferred;
}

}  // namespace leadscore::pg
