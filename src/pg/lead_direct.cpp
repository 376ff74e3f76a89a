// A few leads' rows, with their related rows, read through primary-key lookups instead of the
// lead-row query: an activity insert whose rules read its lead pays one index probe per table
// instead of a query's executor start-up. Tables it cannot read this way (no single-column
// primary key on the joined column, row-level security, no SELECT right, a view or a
// partitioned table, a distributed table on the coordinator) leave the work to the query.
#include <algorithm>

#include "pg/matching.hpp"
#include "pg/relations.hpp"
#include "pg/rights.hpp"

extern "C" {
#include "access/genam.h"
#include "access/relscan.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_class.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "parser/parse_coerce.h"
#include "utils/acl.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"
}

namespace leadscore::pg {

namespace {

// One table read by its primary key, which must be on exactly `column`.
struct KeyProbe {
    Relation rel = nullptr;
    Relation index = nullptr;
    AttrNumber column = InvalidAttrNumber;
    Oid column_type = InvalidOid;
    RegProcedure eq_proc = InvalidOid;
    TupleTableSlot* slot = nullptr;
};

// Opens rel for a lookup by `column`; false (rel left open for the caller to close) when the
// table cannot be read directly.
bool open_probe(Oid relid, const std::string& column, KeyProbe& p) {
    p.rel = table_open(relid, AccessShareLock);
    if (p.rel->rd_rel->relkind != RELKIND_RELATION) return false;
    if (pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK) return false;
    if (check_enable_rls(relid, InvalidOid, true) == RLS_ENABLED) return false;
    p.column = get_attnum(relid, column.c_str());
    if (p.column == InvalidAttrNumber) return false;
    p.column_type = TupleDescAttr(RelationGetDescr(p.rel), p.column - 1)->atttypid;
    const Oid pk = RelationGetPrimaryKeyIndex(p.rel);
    if (!OidIsValid(pk)) return false;
    p.index = index_open(pk, AccessShareLock);
    if (IndexRelationGetNumberOfKeyAttributes(p.index) != 1 || p.index->rd_index->indkey.values[0] != p.column ||
        !IsBinaryCoercible(p.column_type, p.index->rd_opcintype[0]))
        return false;
    p.eq_proc = index_equality_proc(p.index);
    if (!OidIsValid(p.eq_proc)) return false;
    p.slot = table_slot_create(p.rel, nullptr);
    return true;
}

void close_probe(KeyProbe& p) {
    if (p.slot) ExecDropSingleTupleTableSlot(p.slot);
    if (p.index) index_close(p.index, NoLock);
    if (p.rel) table_close(p.rel, NoLock);
    p = KeyProbe();
}

// The row whose key equals value, in p.slot; false when there is none.
bool probe(KeyProbe& p, Datum value, Snapshot snapshot) {
    ScanKeyData skey;
    ScanKeyEntryInitialize(&skey, 0, 1, BTEqualStrategyNumber, InvalidOid, p.index->rd_indcollation[0], p.eq_proc,
                           value);
    IndexScanDesc scan = index_beginscan(p.rel, p.index, snapshot, 1, 0);
    index_rescan(scan, &skey, 1, nullptr, 0);
    const bool found = index_getnext_slot(scan, ForwardScanDirection, p.slot);
    index_endscan(scan);
    if (found) slot_getallattrs(p.slot);
    return found;
}

}  // namespace

bool collect_fits_directly(const CompiledModel& cm, const std::vector<std::string>& keys, const FitSink& on_lead,
                           LeadRead what) {
    const TrackingInfo& t = *cm.tracking;
    if (!OidIsValid(t.leads) || (t.distributed && !t.on_shard)) return false;
    const std::vector<ColumnBinding>& columns = cm.lead_matcher->columns;
    // Where each lead-row column comes from: table 0 is the leads table, table i + 1 the
    // model's relation i; the attribute is resolved once the table is open.
    std::vector<std::size_t> table_of(columns.size(), 0);
    std::vector<std::string> column_name(columns.size());
    std::vector<char> relation_used(cm.relations.size(), 0);
    for (std::size_t c = 0; c < columns.size(); c++) {
        const std::string& name = columns[c].name;
        const auto dot = name.find('.');
        column_name[c] = dot == std::string::npos ? name : name.substr(dot + 1);
        if (dot == std::string::npos) continue;
        const std::string relation = name.substr(0, dot);
        std::size_t r = 0;
        while (r < cm.relations.size() && cm.relations[r].name != relation) r++;
        if (r == cm.relations.size()) return false;
        table_of[c] = r + 1;
        relation_used[r] = 1;
    }
    const std::size_t width = 1 + columns.size();
    // Each found lead's row (key, then the columns), copied into scratch.
    std::vector<Datum> values;
    std::vector<char> nulls;
    std::size_t found_rows = 0;
    std::vector<KeyProbe> probes(1 + cm.relations.size());
    std::vector<AttrNumber> attnum(columns.size(), InvalidAttrNumber);
    std::vector<AttrNumber> refers(cm.relations.size(), InvalidAttrNumber);
    // Which relations have a row for the lead at hand.
    std::vector<char> related(cm.relations.size(), 0);
    Oid key_type = InvalidOid;
    bool usable = true;
    MemoryContext scratch = nullptr;
    // The same identity and rights the lead-row query runs with.
    OwnerRights rights;
    pg_guard([&] {
        scratch = AllocSetContextCreate(CurrentMemoryContext, "leadscore lead rows", ALLOCSET_SMALL_SIZES);
        MemoryContext old = MemoryContextSwitchTo(scratch);
        usable = open_probe(t.leads, t.lead_key, probes[0]);
        for (std::size_t r = 0; usable && r < cm.relations.size(); r++) {
            if (!relation_used[r]) continue;
            const RelationInfo& rel = cm.relations[r];
            refers[r] = get_attnum(t.leads, rel.lead_column.c_str());
            usable = refers[r] != InvalidAttrNumber && open_probe(rel.target, rel.target_key, probes[r + 1]) &&
                     IsBinaryCoercible(TupleDescAttr(RelationGetDescr(probes[0].rel), refers[r] - 1)->atttypid,
                                       probes[r + 1].index->rd_opcintype[0]);
        }
        for (std::size_t c = 0; usable && c < columns.size(); c++) {
            attnum[c] = get_attnum(RelationGetRelid(probes[table_of[c]].rel), column_name[c].c_str());
            usable = attnum[c] != InvalidAttrNumber;
        }
        if (usable) {
            key_type = probes[0].column_type;
            Oid input_fn, ioparam;
            getTypeInputInfo(key_type, &input_fn, &ioparam);
            // Rows this transaction wrote are seen, and those committed while we waited for the
            // leads' locks, as the query would see them.
            CommandCounterIncrement();
            Snapshot snapshot = RegisterSnapshot(GetTransactionSnapshot());
            values.resize(width * keys.size());
            nulls.resize(width * keys.size());
            for (const std::string& key : keys) {
                const Datum key_value = OidInputFunctionCall(input_fn, const_cast<char*>(key.c_str()), ioparam, -1);
                if (!probe(probes[0], key_value, snapshot)) continue;
                TupleTableSlot* lead = probes[0].slot;
                // Each used relation's row (LEFT JOIN: none when the reference is NULL or dangling).
                std::fill(related.begin(), related.end(), 0);
                for (std::size_t r = 0; r < cm.relations.size(); r++)
                    if (relation_used[r] && !lead->tts_isnull[refers[r] - 1])
                        related[r] = probe(probes[r + 1], lead->tts_values[refers[r] - 1], snapshot);
                Datum* row = values.data() + found_rows * width;
                char* row_nulls = nulls.data() + found_rows * width;
                auto copy = [&](std::size_t at, TupleTableSlot* slot, AttrNumber a) {
                    Form_pg_attribute att = TupleDescAttr(slot->tts_tupleDescriptor, a - 1);
                    row_nulls[at] = slot->tts_isnull[a - 1];
                    row[at] = row_nulls[at] ? (Datum)0 : datumCopy(slot->tts_values[a - 1], att->attbyval, att->attlen);
                };
                copy(0, lead, probes[0].column);
                for (std::size_t c = 0; c < columns.size(); c++) {
                    if (table_of[c] == 0) {
                        copy(c + 1, lead, attnum[c]);
                    } else if (related[table_of[c] - 1]) {
                        copy(c + 1, probes[table_of[c]].slot, attnum[c]);
                    } else {
                        row[c + 1] = (Datum)0;
                        row_nulls[c + 1] = 1;
                    }
                }
                found_rows++;
            }
            UnregisterSnapshot(snapshot);
        }
        for (KeyProbe& p : probes) close_probe(p);
        MemoryContextSwitchTo(old);
    });
    if (usable) {
        RowLayout layout;
        layout.lead = 1;
        layout.key_type = key_type;
        layout.key_text = TextOutput(key_type);
        for (std::size_t c = 0; c < columns.size(); c++) layout.columns.push_back(static_cast<int>(c) + 2);
        std::string key;
        for (std::size_t i = 0; i < found_rows; i++) {
            const Datum* row = values.data() + i * width;
            const bool* row_nulls = reinterpret_cast<const bool*>(nulls.data() + i * width);
            FitFacts f = match_lead_row(cm, layout, row, row_nulls, key, what);
            on_lead(key, f);
        }
    }
    pg_guard([&] { MemoryContextDelete(scratch); });
    return usable;
}

}  // namespace leadscore::pg
