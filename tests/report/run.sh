#!/usr/bin/env bash
# Builds leadscore-report, runs it on the demo CRM, renders the HTML in headless Chromium and
# checks that every chart was drawn (non-empty size, bars present) and the top leads listed.
#   tests/report/run.sh [--screenshot]   (--screenshot refreshes docs/images/report.png)
set -euo pipefail
cd "$(dirname "$0")/../.."
root="$(pwd)"
if [ -z "${LEADSCORE_REPORT_INNER:-}" ]; then
    export LEADSCORE_REPORT_INNER=1 PGUSER="${PGUSER:-postgres}" REPORT_SCREENSHOT="${1:-}"
    make -s -C tools/leadscore-report
    exec pg_virtualenv -t -v 15 "$0"
fi
work="$(mktemp -d /tmp/leadscore-report.XXXXXX)"
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT
psql -X -q -v ON_ERROR_STOP=1 -v seed=11 -v leads=600 -f demo/generate.sql
psql -X -q -v ON_ERROR_STOP=1 -f demo/model.sql >/dev/null
as_of="$(psql -X -At -c "SELECT (current_date - 60)::text")"
tools/leadscore-report/leadscore-report --model demo --outcomes crm.outcome --as-of "$as_of" -o "$work/report.html"

fail=0
check() { if eval "$2"; then echo "report: $1"; else echo "report: FAILED: $1"; fail=1; fi; }
html="$work/report.html"
check "self-contained (no external resource)" "! grep -Eq '(src|href)=\"(https?:)?//' '$html'"
for id in funnel grades histogram deciles entries; do
    check "chart $id present" "grep -q '<svg id=\"$id\"' '$html'"
done
check "top leads listed" "[ \$(grep -o '<tr><td>' '$html' | wc -l) -ge 10 ]"
# Errors are clear: unknown model, bad connection.
check "unknown model is an error" \
    "! tools/leadscore-report/leadscore-report --model nope -o '$work/x.html' 2>'$work/err' && grep -q 'does not exist' '$work/err'"
check "bad connection is an error" \
    "! tools/leadscore-report/leadscore-report 'host=/nonexistent port=1' --model demo -o '$work/x.html' 2>'$work/err' && grep -q 'cannot connect' '$work/err'"

chromium_bin="$(command -v chromium || command -v chromium-browser || true)"
if [ -z "$chromium_bin" ]; then
    echo "report: FAILED: chromium is not installed (scripts/setup.sh installs it)"; exit 1
fi
flags=(--headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update
       --no-first-run --disable-dev-shm-usage --user-data-dir="$work/profile")
timeout 120 "$chromium_bin" "${flags[@]}" --dump-dom "file://$html" >"$work/dom.html" 2>"$work/chromium.log" || {
    echo "report: FAILED: chromium could not render the page"; tail -20 "$work/chromium.log"; exit 1; }
perl -0777 -ne 'print $1 if /<pre id="render-check"[^>]*>(.*?)<\/pre>/s' "$work/dom.html" >"$work/render" || true
echo "report: rendered charts:"; sed 's/^/  /' "$work/render"; echo
for id in funnel grades histogram deciles entries; do
    check "chart $id drawn with bars" \
        "awk -v id=$id '\$1 == id { split(\$2, s, \"x\"); split(\$3, b, \"=\"); ok = (s[1] > 100 && s[2] > 50 && b[2] > 0) } END { exit ok ? 0 : 1 }' '$work/render'"
done
if [ "${REPORT_SCREENSHOT:-}" = "--screenshot" ]; then
    timeout 120 "$chromium_bin" "${flags[@]}" --hide-scrollbars --window-size=900,2300 \
        --screenshot="$root/docs/images/report.png" "file://$html" >/dev/null 2>&1
    echo "report: screenshot written to docs/images/report.png"
fi
[ $fail -eq 0 ] && echo "report test: ok" || { echo "report test: FAILED"; exit 1; }
