#!/usr/bin/env bash
# Builds the libFuzzer targets and runs each for a bounded time from its committed corpus.
# Fails on any finding (crash, sanitizer report, broken invariant).
#   tests/fuzz/run.sh [seconds per target, default 20]
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-20}"
build="../../build/fuzz"
cmake -S . -B "$build" -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null
status=0
for t in fuzz_decimal fuzz_rules fuzz_summary fuzz_engine; do
    corpus="corpus/$t"
    mkdir -p "$corpus"
    work="$(mktemp -d)"
    # New inputs go to a scratch directory: the committed corpus stays as it is.
    if "$build/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$work/" "$work" "$corpus" >"$work/log" 2>&1; then
        echo "fuzz $t: ok ($(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "$work/log" | grep -o '[0-9]*$') runs)"
    else
        echo "fuzz $t: FINDING"; tail -40 "$work/log"; ls "$work" | grep -E '^(crash|leak|timeout|oom)-' || true
        status=1
    fi
    rm -rf "$work"
done
exit $status
