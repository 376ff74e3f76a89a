// Looking up relations, columns and types in the system catalogs.
#include "pg/relations.hpp"

extern "C" {
#include "access/stratnum.h"
#include "catalog/namespace.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/relcache.h"
}

namespace leadscore::pg {

std::string relation_display_name(Oid relid) {
    std::string out;
    pg_guard([&] {
        char* nsp = get_namespace_name(get_rel_namespace(relid));
        char* rel = get_rel_name(relid);
        if (!rel) elog(ERROR, "leadscore: relation %u does not exist", relid);
        out = quote_qualified_identifier(nsp, rel);
    });
    return out;
}

TupleDesc relation_desc_copy(Oid relid) {
    TupleDesc desc = nullptr;
    pg_guard([&] {
        Relation rel = RelationIdGetRelation(relid);
        if (!RelationIsValid(rel)) elog(ERROR, "leadscore: tracked table %u is gone", relid);
        desc = CreateTupleDescCopy(RelationGetDescr(rel));
        RelationClose(rel);
    });
    return desc;
}

std::string type_name(Oid type) {
    std::string out;
    pg_guard([&] { out = format_type_be(type); });
    return out;
}

int find_attribute(TupleDesc desc, const std::string& name) {
    for (int i = 0; i < desc->natts; i++) {
        Form_pg_attribute att = TupleDescAttr(desc, i);
        if (!att->attisdropped && name == NameStr(att->attname)) return i + 1;
    }
    return 0;
}

Oid leadscore_relation_oid(const char* name) {
    Oid oid = InvalidOid;
    pg_guard([&] {
        const Oid schema = get_namespace_oid("leadscore", true);
        if (OidIsValid(schema)) oid = get_relname_relid(name, schema);
    });
    return oid;
}

RegProcedure index_equality_proc(Relation index) {
    const Oid type = index->rd_opcintype[0];
    const Oid eq = get_opfamily_member(index->rd_opfamily[0], type, type, BTEqualStrategyNumber);
    return OidIsValid(eq) ? get_opcode(eq) : InvalidOid;
}

}  // namespace leadscore::pg
