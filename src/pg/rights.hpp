// Whose rights leadscore's SQL runs with: the live triggers run with the invoker's rights, and
// the SQL they issue switches to the trigger function's owner with search_path pinned.
#pragma once

#include "pg/boundary.hpp"

namespace leadscore::pg {

// Marks a trigger that runs with the invoker's rights (its direct heap and index work needs
// none); SQL it runs through SpiConnection switches to the function owner for its duration.
class InvokerTrigger {
public:
    explicit InvokerTrigger(FunctionCallInfo fcinfo);
    ~InvokerTrigger();
    InvokerTrigger(const InvokerTrigger&) = delete;
    InvokerTrigger& operator=(const InvokerTrigger&) = delete;

private:
    Oid previous_owner_;
};

// Inside an InvokerTrigger, the outermost OwnerRights runs as the trigger function's owner with
// search_path pinned to pg_catalog, pg_temp (what SECURITY DEFINER gave, paid only when SQL
// runs); elsewhere, and when nested, it changes nothing. Unwound by an exception, it puts the
// user back at once and leaves the settings to the abort that follows.
class OwnerRights {
public:
    OwnerRights();
    ~OwnerRights();
    OwnerRights(const OwnerRights&) = delete;
    OwnerRights& operator=(const OwnerRights&) = delete;

private:
    int exceptions_at_start_;
    bool switched_ = false;
    Oid saved_user_ = InvalidOid;
    int saved_security_context_ = 0;
    int guc_level_ = 0;
};

// At the end of an aborted transaction no trigger or switch is left: forget them.
void reset_invoker_state();

}  // namespace leadscore::pg
