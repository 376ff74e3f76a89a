#!/usr/bin/env bash
# Sourced by tests/citus/run.sh and bench/citus.sh: a throwaway Citus cluster on this machine
# (a coordinator on $citus_base and two workers on the next two ports), data under a
# temporary directory, stopped and removed at exit unless LEADSCORE_CITUS_KEEP is set.
citus_bin=$(/usr/lib/postgresql/15/bin/pg_config --bindir)
citus_installed() { [ -f "$(/usr/lib/postgresql/15/bin/pg_config --pkglibdir)/citus.so" ]; }
citus_as_owner() { if [ "$(id -u)" = 0 ]; then su postgres -c "$*"; else bash -c "$*"; fi; }
citus_stop() {
    [ -n "${LEADSCORE_CITUS_KEEP:-}" ] && { echo "citus: cluster kept in $citus_dir"; return; }
    for p in $citus_ports; do citus_as_owner "$citus_bin/pg_ctl -D $citus_dir/$p stop -m immediate >/dev/null 2>&1" || true; done
    rm -rf "$citus_dir"
}
# citus_start BASE_PORT [WORKERS]: starts a coordinator and WORKERS (2, or 0: the coordinator
# holds the shards itself) nodes, creates citus, adds the workers.
citus_start() {
    citus_base=$1
    local workers=${2:-2}
    citus_ports="$citus_base"
    for w in $(seq 1 "$workers"); do citus_ports="$citus_ports $((citus_base + w))"; done
    citus_dir=$(mktemp -d /tmp/leadscore-citus.XXXXXX)
    [ "$(id -u)" = 0 ] && chown postgres "$citus_dir"
    trap citus_stop EXIT
    for p in $citus_ports; do
        citus_as_owner "$citus_bin/initdb -D $citus_dir/$p -A trust -U postgres >/dev/null"
        citus_as_owner "$citus_bin/pg_ctl -D $citus_dir/$p -o '-p $p -c shared_preload_libraries=citus -c listen_addresses=127.0.0.1 \
            -c unix_socket_directories=$citus_dir -c max_connections=200 -c max_prepared_transactions=200' -l $citus_dir/$p.log start >/dev/null"
    done
    export PGHOST=127.0.0.1 PGUSER=postgres PGDATABASE=postgres
    for p in $citus_ports; do psql -X -q -p "$p" -c "CREATE EXTENSION citus" || return 1; done
    psql -X -q -At -p "$citus_base" -c "SELECT citus_set_coordinator_host('127.0.0.1', $citus_base)" >/dev/null
    for p in $citus_ports; do
        [ "$p" = "$citus_base" ] && continue
        psql -X -q -At -p "$citus_base" -c "SELECT citus_add_node('127.0.0.1', $p)" >/dev/null || return 1
    done
    if [ "$workers" = 0 ]; then
        psql -X -q -At -p "$citus_base" -c "SELECT citus_set_node_property('127.0.0.1', $citus_base, 'shouldhaveshards', true)" >/dev/null
    fi
}
