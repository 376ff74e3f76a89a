// What SQL-callable functions and triggers receive: argument readers, trigger checks and
// transition-table scans shared by the entry points in functions/.
#pragma once

#include <string>
#include <vector>

#include "pg/boundary.hpp"

extern "C" {
#include "commands/trigger.h"
#include "utils/tuplestore.h"
}

namespace leadscore::pg {

// A text argument; raises naming `what` when it is NULL.
std::string text_arg(FunctionCallInfo fcinfo, int n, const char* what);
std::string name_arg(FunctionCallInfo fcinfo, int n);
// A timestamptz argument; the transaction's start when NULL.
Timestamp as_of_arg(FunctionCallInfo fcinfo, int n);
// The model named by a text argument, or every tracked model when it is NULL.
std::vector<std::string> models_arg(FunctionCallInfo fcinfo, int n);
// The canonical text form of a lead key given as any type (an anyelement argument).
std::string lead_key_arg(FunctionCallInfo fcinfo, int n, Oid key_type);

// The trigger data of a row or statement trigger; raises when not called as a trigger.
TriggerData* trigger_arg(FunctionCallInfo fcinfo, const char* name);

// The trigger data of a live trigger with the model name as its argument: AFTER, per
// statement (transition tables), or per row (changes applied by logical replication).
TriggerData* live_trigger_arg(FunctionCallInfo fcinfo, const char* name);

// Reads the old (or new) rows a live trigger sees: its transition table, or a row trigger's
// one tuple; on_row gets the deformed row (values, nulls).
void scan_trigger_rows(TriggerData* trig, bool old_rows, TupleDesc desc, void (*on_row)(void*, Datum*, bool*),
                       void* ctx);
template <class F>
void scan_trigger(TriggerData* trig, bool old_rows, TupleDesc desc, F&& on_row) {
    scan_trigger_rows(
        trig, old_rows, desc,
        [](void* f, Datum* v, bool* n) { (*static_cast<std::remove_reference_t<F>*>(f))(v, n); },
        const_cast<void*>(static_cast<const void*>(&on_row)));
}

// Reads a transition table row by row; on_row gets the deformed row (values, nulls).
void scan_transition_rows(Tuplestorestate* store, TupleDesc desc, void (*on_row)(void*, Datum*, bool*), void* ctx);
template <class F>
void scan_transition(Tuplestorestate* store, TupleDesc desc, F&& on_row) {
    scan_transition_rows(
        store, desc, [](void* f, Datum* v, bool* n) { (*static_cast<std::remove_reference_t<F>*>(f))(v, n); },
        const_cast<void*>(static_cast<const void*>(&on_row)));
}

}  // namespace leadscore::pg
