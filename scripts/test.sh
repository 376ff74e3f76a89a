#!/usr/bin/env bash
# Command two: set up, build, install, and run every suite: GoogleTest (plain and under
# ASan+UBSan), pg_regress, isolation, pgTAP (incl. pg_cron). Ends with one summary line.
set -uo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
scripts/setup.sh || { echo "leadscore tests: 0 passed, 1 failed (setup)"; exit 1; }

passed=0
failed=0
failures=()
run_suite() {
    local name="$1"; shift
    echo "=== suite: $name"
    if "$@"; then
        passed=$((passed + 1)); echo "=== suite $name: ok"
    else
        failed=$((failed + 1)); failures+=("$name"); echo "=== suite $name: FAILED"
    fi
}

core_tests() {
    local dir="$1"; shift
    cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=Debug "$@" >/dev/null &&
        cmake --build "$dir" -j"$(nproc)" >/dev/null &&
        (cd "$dir" && ctest --output-on-failure)
}

pg_suites() {
    # Runs inside pg_virtualenv: PG* variables point at a throwaway cluster.
    local rc=0
    make -s installcheck PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config || {
        rc=1
        [ -f regression.diffs ] && cat regression.diffs
        [ -f output_iso/regression.diffs ] && cat output_iso/regression.diffs
    }
    return $rc
}

pgtap_suite() {
    createdb leadscore_tap && psql -X -q -d leadscore_tap -c "CREATE EXTENSION pgtap" &&
        pg_prove -d leadscore_tap --ext .sql -v tests/pgtap/ 
}

export PGUSER="${PGUSER:-postgres}"
run_suite "core (CTest)" core_tests "$root/build/core"
run_suite "core under ASan+UBSan (CTest)" core_tests "$root/build/core-asan" -DLEADSCORE_SANITIZE=ON
run_suite "pg_regress + isolation" pg_virtualenv -t -v 15 bash -c "$(declare -f pg_suites); pg_suites"
run_suite "pgTAP (pg_prove)" pg_virtualenv -t -v 15 -o shared_preload_libraries=pg_cron -o cron.database_name=leadscore_tap -o cron.use_background_workers=on \
    bash -c "$(declare -f pgtap_suite); pgtap_suite"

run_suite "upgrade from every release (tests/upgrade)" bash tests/upgrade/run.sh
run_suite "crash safety: SIGKILL during a load (tests/crash)" bash tests/crash/run.sh
run_suite "pg_dump / pg_restore round trip (tests/dump_restore)" bash tests/dump_restore/run.sh
run_suite "logical-replication subscriber (tests/replication)" bash tests/replication/run.sh
run_suite "Citus cluster, skipped without Citus (tests/citus)" bash tests/citus/run.sh
run_suite "fuzzing (tests/fuzz, bounded)" bash tests/fuzz/run.sh 15
run_suite "leadscore-report in headless Chromium (tests/report)" bash tests/report/run.sh
run_suite "change data capture: leadscore-sync (tests/sync)" bash tests/sync/run.sh
run_suite "Debian package (tests/debian)" bash tests/debian/run.sh
run_suite "benchmark smoke (bench/run.sh --quick)" bash bench/run.sh --quick

echo
if [ "$failed" -gt 0 ]; then echo "failed suites: ${failures[*]}"; fi
echo "leadscore suites: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
