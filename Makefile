EXTENSION = leadscore
EXTVERSION = 0.4.0
# Released versions: frozen install scripts, kept so that upgrades can be tested.
OLD_VERSIONS = 0.1.0 0.2.0 0.3.0
MODULE_big = leadscore

CORE_SRCS = $(wildcard src/core/*.cpp)
PG_SRCS = $(wildcard src/pg/*.cpp)
OBJS = $(CORE_SRCS:.cpp=.o) $(PG_SRCS:.cpp=.o)

DATA = $(wildcard sql/$(EXTENSION)--*--*.sql) $(foreach v,$(OLD_VERSIONS),sql/$(EXTENSION)--$(v).sql) sql/$(EXTENSION)--$(EXTVERSION).sql
EXTRA_CLEAN = sql/$(EXTENSION)--$(EXTVERSION).sql

REGRESS = $(patsubst sql/%.sql,%,$(filter-out sql/$(EXTENSION).sql sql/$(EXTENSION)--%,$(wildcard sql/*.sql)))
REGRESS_OPTS = --inputdir=. --load-extension=$(EXTENSION)
ISOLATION = $(patsubst specs/%.spec,%,$(wildcard specs/*.spec))
ISOLATION_OPTS = --load-extension=$(EXTENSION)

PG_CONFIG ?= pg_config
PG_CPPFLAGS = -I$(CURDIR)/src
PG_CXXFLAGS = -std=c++17 -Wno-register -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers -fPIC
SHLIB_LINK += -lstdc++ -lm

# No LLVM bitcode: the JIT gains nothing from our C++ and clang may be absent.
override with_llvm := no
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# Server headers are system headers: their warnings are not ours.
override CPPFLAGS := $(subst -I$(includedir_server),-isystem $(includedir_server),$(CPPFLAGS))
override CPPFLAGS := $(subst -I$(includedir_internal),-isystem $(includedir_internal),$(CPPFLAGS))
COMPILE.cxx.bc += $(PG_CXXFLAGS)

# The core compiles without any PostgreSQL include directory: it cannot include postgres.h.
src/core/%.o: src/core/%.cpp $(wildcard src/core/*.hpp)
	$(CXX) $(PG_CXXFLAGS) -O2 -g -I$(CURDIR)/src -c -o $@ $<

src/pg/%.o: src/pg/%.cpp $(wildcard src/pg/*.hpp) $(wildcard src/core/*.hpp)
	$(CXX) $(CXXFLAGS) $(PG_CXXFLAGS) $(CPPFLAGS) -c -o $@ $<

sql/$(EXTENSION)--$(EXTVERSION).sql: sql/$(EXTENSION).sql
	cp $< $@

all: sql/$(EXTENSION)--$(EXTVERSION).sql
