// The invoker-rights triggers and the switch to the function owner for the SQL they run.
#include <exception>

#include "pg/rights.hpp"

extern "C" {
#include "access/htup_details.h"
#include "catalog/pg_proc.h"
#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/syscache.h"
}

namespace leadscore::pg {

namespace {

// Owner of the running invoker-rights trigger function (InvalidOid outside one).
Oid trigger_owner = InvalidOid;
// OwnerRights that switched to trigger_owner and are still alive.
int owner_switches = 0;

}  // namespace

InvokerTrigger::InvokerTrigger(FunctionCallInfo fcinfo) : previous_owner_(trigger_owner) {
    Oid owner = InvalidOid;
    pg_guard([&] {
        HeapTuple tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(fcinfo->flinfo->fn_oid));
        if (!HeapTupleIsValid(tuple)) elog(ERROR, "leadscore: cache lookup failed for function %u", fcinfo->flinfo->fn_oid);
        owner = reinterpret_cast<Form_pg_proc>(GETSTRUCT(tuple))->proowner;
        ReleaseSysCache(tuple);
    });
    trigger_owner = owner;
}

InvokerTrigger::~InvokerTrigger() { trigger_owner = previous_owner_; }

OwnerRights::OwnerRights() : exceptions_at_start_(std::uncaught_exceptions()) {
    if (!OidIsValid(trigger_owner) || owner_switches > 0) return;
    pg_guard([&] {
        GetUserIdAndSecContext(&saved_user_, &saved_security_context_);
        SetUserIdAndSecContext(trigger_owner, saved_security_context_ | SECURITY_LOCAL_USERID_CHANGE);
        guc_level_ = NewGUCNestLevel();
        (void)set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
                                true, 0, false);
    });
    switched_ = true;
    owner_switches++;
}

OwnerRights::~OwnerRights() {
    if (!switched_) return;
    owner_switches--;
    if (std::uncaught_exceptions() <= exceptions_at_start_) {
        try {
            pg_guard([&] { AtEOXact_GUC(true, guc_level_); });
        } catch (...) {
        }
    }
    SetUserIdAndSecContext(saved_user_, saved_security_context_);
}

void reset_invoker_state() {
    trigger_owner = InvalidOid;
    owner_switches = 0;
}

}  // namespace leadscore::pg
