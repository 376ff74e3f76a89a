// Included first by every core header: the scoring engine must stay free of PostgreSQL.
#pragma once
#if defined(PG_VERSION_NUM) || defined(POSTGRES_H) || defined(FMGR_H)
#error "src/core must not include PostgreSQL headers (include core headers before postgres.h)"
#endif
