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
# The client tools are installed with the extension, into `pg_config --bindir`: PGXS builds
# SCRIPTS_built with `all`, installs them with `install` and removes them with `clean`.
REPORT_TOOL = tools/leadscore-report/leadscore-report
SYNC_TOOL = tools/leadscore-sync/leadscore-sync
SCRIPTS_built = $(REPORT_TOOL) $(SYNC_TOOL)

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

# leadscore-report's own Makefile builds it; the flags are passed so that CXXFLAGS from PGXS
# or the environment (dpkg-buildflags) cannot replace -Wall -Wextra -Werror.
$(REPORT_TOOL): tools/leadscore-report/leadscore_report.cpp
	$(MAKE) -C tools/leadscore-report CXXFLAGS='-std=c++17 -O2 -Wall -Wextra -Werror'
$(SYNC_TOOL): tools/leadscore-sync/leadscore_sync.cpp
	$(MAKE) -C tools/leadscore-sync CXXFLAGS='-std=c++17 -O2 -Wall -Wextra -Werror'

# PGXS's uninstall removes $(bindir)/<path as built>; the installed name is the file name.
uninstall: uninstall-tools
uninstall-tools:
	rm -f '$(DESTDIR)$(bindir)/$(notdir $(REPORT_TOOL))' '$(DESTDIR)$(bindir)/$(notdir $(SYNC_TOOL))'
.PHONY: uninstall-tools

# Released versions, for the upgrade test: make -s print-released-versions
print-released-versions:
	@echo $(patsubst extension/$(EXTENSION)--%.sql,%,$(FROZEN_SCRIPTS))
.PHONY: print-released-versions
