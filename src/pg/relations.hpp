// Looking up relations, columns and types in the system catalogs.
#pragma once

#include <string>

#include "pg/boundary.hpp"

extern "C" {
#include "access/tupdesc.h"
#include "utils/relcache.h"
}

namespace leadscore::pg {

// schema.table, quoted as needed; throws when the relation is gone.
std::string relation_display_name(Oid relid);
// A copy of a relation's tuple descriptor (in the current memory context).
TupleDesc relation_desc_copy(Oid relid);
// format_type of a type.
std::string type_name(Oid type);
// 1-based attribute number of a live column; 0 when there is none.
int find_attribute(TupleDesc desc, const std::string& name);
// A relation of schema leadscore by name, without a USAGE check (triggers run with the
// invoker's rights); InvalidOid when missing.
Oid leadscore_relation_oid(const char* name);
// The function of the equality operator for a btree index's first key column (its operator
// class's own type on both sides); InvalidOid when the family has none. Inside pg_guard.
RegProcedure index_equality_proc(Relation index);

}  // namespace leadscore::pg
