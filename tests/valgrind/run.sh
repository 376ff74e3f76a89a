#!/usr/bin/env bash
# Runs the pg_regress suite once against a postgres started under valgrind and reports the
# valgrind errors whose stack has a leadscore frame. Slow (minutes): not part of
# scripts/test.sh. Debian's PostgreSQL is not built with USE_VALGRIND and its suppression
# file is not packaged, so errors from PostgreSQL itself are listed but not counted.
#   tests/valgrind/run.sh     (as root; needs the valgrind package)
set -euo pipefail
cd "$(dirname "$0")/../.."
root="$(pwd)"
bin=/usr/lib/postgresql/15/bin
dir="$(mktemp -d /tmp/leadscore-valgrind.XXXXXX)"
chown postgres "$dir"
su postgres -c "$bin/initdb -D $dir/data -A trust >/dev/null"
su postgres -c "valgrind --quiet --trace-children=yes --num-callers=40 --leak-check=no --log-file=$dir/vg.%p.log \
    $bin/postgres -D $dir/data -p 5499 -k $dir -c listen_addresses= -c max_connections=20 -c shared_buffers=32MB \
    -c max_parallel_workers_per_gather=0" >"$dir/server.log" 2>&1 &
for _ in $(seq 600); do "$bin/pg_isready" -h "$dir" -p 5499 -q && break; sleep 1; done
status=0
make -s installcheck PGHOST="$dir" PGPORT=5499 PGUSER=postgres ISOLATION= \
    EXTRA_REGRESS_OPTS="--launcher=timeout\ 3000" || status=$?
su postgres -c "$bin/pg_ctl -D $dir/data -m fast stop" >/dev/null 2>&1 || true
sleep 2
# One valgrind error block is a run of lines between blank lines, starting with a message.
# An error is ours when the innermost frame of its stack ("at ...") is in leadscore.so.
ours_awk='BEGIN {RS=""} /(Invalid|uninitialised|Mismatched|free|overlap|Conditional)/ {
    n = split($0, l, "\n"); for (i = 1; i <= n; i++) if (l[i] ~ / at 0x/) { if (l[i] ~ /leadscore/) { c++; if (show) print $0 "\n" }; break } }
    END {if (!show) print c+0}'
ours=$(awk -v show=0 "$ours_awk" "$dir"/vg.*.log)
all=$(grep -h -c "^==[0-9]*== [A-Z]" "$dir"/vg.*.log | awk '{s+=$1} END {print s+0}')
echo "valgrind: regression suite exit status $status; valgrind errors in all logs: $all; errors in leadscore's code (innermost frame in leadscore.so): $ours"
echo "valgrind logs: $dir"
awk -v show=1 "$ours_awk" "$dir"/vg.*.log | head -200
[ "$status" -eq 0 ] && [ "$ours" -eq 0 ]
