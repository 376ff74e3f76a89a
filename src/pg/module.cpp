#include "pg/catalog.hpp"

extern "C" {
PG_MODULE_MAGIC;

void _PG_init(void);

void _PG_init(void) { leadscore::pg::register_cache_callbacks(); }
}
