// Writing new result columns into stored state rows in place, for the two direct paths (the
// activity trigger's and the rule edits' pass): the executor's update without SQL.
#pragma once

#include <cstdint>
#include <vector>

#include "pg/state_row.hpp"

extern "C" {
#include "access/tableam.h"
#include "nodes/execnodes.h"
#include "utils/snapshot.h"
}

namespace leadscore::pg {

// Plain PostgreSQL code: use inside pg_guard. Trivially destructible (an ERROR may skip it);
// finish() releases what it set up.
// The state table's key index (its primary key), opened; an ERROR naming the table when it has
// none. Plain PostgreSQL code: call inside pg_guard.
Relation open_state_key_index(Relation rel);

class StateRowWriter {
public:
    // attnum: the state table's attribute number of each StateColumn; context: where the
    // executor state for index insertions lives (it outlives a row's memory).
    StateRowWriter(Relation rel, const std::vector<std::int16_t>& attnum, Snapshot snapshot, MemoryContext context);
    // The stored row `found` with row's result columns (its summary only when write_summary,
    // its scored_at only when write_scored_at), ready for update().
    void compose(TupleTableSlot* found, const StateDatums& row, bool write_summary, bool write_scored_at);
    // Updates the row at target to the composed values (as of this command, against the
    // snapshot); on TM_Ok also inserts index entries when the update was not HOT.
    TM_Result update(ItemPointer target, TM_FailureData* tmfd);
    void finish();

private:
    Relation rel_;
    const std::int16_t* attnum_;
    Snapshot snapshot_;
    MemoryContext context_;
    CommandId cid_;
    TupleTableSlot* updated_;
    // Set up only when an update is not HOT.
    EState* estate_ = nullptr;
    ResultRelInfo* rri_ = nullptr;
};

}  // namespace leadscore::pg
