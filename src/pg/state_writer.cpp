// Writing stored state rows in place through the table AM (see state_writer.hpp).
#include "pg/state_writer.hpp"

extern "C" {
#include "access/genam.h"
#include "access/xact.h"
#include "executor/executor.h"
#include "nodes/makefuncs.h"
#include "utils/rel.h"
}

namespace leadscore::pg {

Relation open_state_key_index(Relation rel) {
    const Oid index_oid = RelationGetPrimaryKeyIndex(rel);
    if (!OidIsValid(index_oid))
        ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED),
                        errmsg("leadscore: state table \"%s\" has no primary key", RelationGetRelationName(rel)),
                        errhint("Run leadscore.untrack() and leadscore.track() again.")));
    return index_open(index_oid, RowExclusiveLock);
}

StateRowWriter::StateRowWriter(Relation rel, const std::vector<std::int16_t>& attnum, Snapshot snapshot,
                               MemoryContext context)
    : rel_(rel),
      attnum_(attnum.data()),
      snapshot_(snapshot),
      context_(context),
      cid_(GetCurrentCommandId(true)),
      updated_(table_slot_create(rel, nullptr)) {}

void StateRowWriter::compose(TupleTableSlot* found, const StateDatums& row, bool write_summary,
                             bool write_scored_at) {
    const int natts = RelationGetDescr(rel_)->natts;
    slot_getallattrs(found);
    ExecClearTuple(updated_);
    memcpy(updated_->tts_values, found->tts_values, sizeof(Datum) * natts);
    memcpy(updated_->tts_isnull, found->tts_isnull, sizeof(bool) * natts);
    for (int c = kFirstResultColumn; c < kStateColumnCount; c++) {
        if ((c == kStateSummary && !write_summary) || (c == kStateScoredAt && !write_scored_at)) continue;
        updated_->tts_values[attnum_[c] - 1] = row.values[c];
        updated_->tts_isnull[attnum_[c] - 1] = row.nulls[c];
    }
    ExecStoreVirtualTuple(updated_);
}

TM_Result StateRowWriter::update(ItemPointer target, TM_FailureData* tmfd) {
    bool update_indexes = false;
    LockTupleMode lockmode;
    const TM_Result res = table_tuple_update(rel_, target, updated_, cid_, snapshot_, InvalidSnapshot, true, tmfd,
                                             &lockmode, &update_indexes);
    if (res != TM_Ok || !update_indexes) return res;
    if (!estate_) {
        MemoryContext row_context = MemoryContextSwitchTo(context_);
        estate_ = CreateExecutorState();
        RangeTblEntry* rte = makeNode(RangeTblEntry);
        rte->rtekind = RTE_RELATION;
        rte->relid = RelationGetRelid(rel_);
        rte->relkind = rel_->rd_rel->relkind;
        rte->rellockmode = RowExclusiveLock;
        ExecInitRangeTable(estate_, list_make1(rte));
        rri_ = makeNode(ResultRelInfo);
        InitResultRelInfo(rri_, rel_, 1, nullptr, 0);
        ExecOpenIndices(rri_, false);
        estate_->es_output_cid = cid_;
        estate_->es_snapshot = snapshot_;
        MemoryContextSwitchTo(row_context);
    }
    List* recheck = ExecInsertIndexTuples(rri_, updated_, estate_, true, false, nullptr, NIL);
    list_free(recheck);
    ResetPerTupleExprContext(estate_);
    return res;
}

void StateRowWriter::finish() {
    ExecDropSingleTupleTableSlot(updated_);
    if (estate_) {
        ExecCloseIndices(rri_);
        FreeExecutorState(estate_);
    }
}

}  // namespace leadscore::pg
