EXTENSION = leadscore
# The version being built comes from the control file: default_version is edited in one place.
EXTVERSION = $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" $(EXTENSION).control)
MODULE_big = leadscore

CORE_SRCS = $(wildcard src/core/*.cpp)
PG_SRCS = $(wildcard src/pg/*.cpp src/pg/functions/*.cpp)
OBJS = $(CORE_SRCS:.cpp=.o) $(PG_SRCS:.cpp=.o)

# extension/: the maintained install script (leadscore.sql), the frozen scripts of released
# versions (leadscore--X.Y.Z.sql) and one upgrade script per release (leadscore--A--B.sql).
# Released versions are the frozen scripts found there; the upgrade test installs each one.
UPGRADE_SCRIPTS = $(wildcard extension/$(EXTENSION)--*--*.sql)
FROZEN_SCRIPTS = $(filter-out $(UPGRADE_SCRIPTS),$(wildcard extension/$(EXTENSION)--*.sql))
DATA = $(UPGRADE_SCRIPTS) $(FROZEN_SCRIPTS)
# The current version's script is built from the maintained one (not committed; see CONTRIBUTING.md).
DATA_built = build/$(EXTENSION)--$(EXTVERSION).sql

# sql/ + expected/ is pg_regress's pair: every file in sql/ is a regression test.
REGRESS = $(patsubst sql/%.sql,%,$(wildcard sql/*.sql))
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

src/pg/%.o: src/pg/%.cpp $(wildcard src/pg/*.hpp src/pg/functions/*.hpp) $(wildcard src/core/*.hpp)
	$(CXX) $(CXXFLAGS) $(PG_CXXFLAGS) $(CPPFLAGS) -c -o $@ $<

$(DATA_built): extension/$(EXTENSION).sql $(EXTENSION).control
	mkdir -p build && cp $< $@

# Released versions, for the upgrade test: make -s print-released-versions
print-released-versions:
	@echo $(patsubst extension/$(EXTENSION)--%.sql,%,$(FROZEN_SCRIPTS))
.PHONY: print-released-versions
