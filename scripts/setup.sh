#!/usr/bin/env bash
# Installs the Debian 12 packages leadscore needs (only those missing), then builds and
# installs the extension into the system PostgreSQL 15.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(postgresql-15 postgresql-server-dev-15 postgresql-15-pgtap libtap-parser-sourcehandler-pgtap-perl
          postgresql-15-cron postgresql-common libpq-dev g++ make cmake libgtest-dev pkg-config
          clang libclang-rt-14-dev chromium debhelper dpkg-dev postgresql-server-dev-all)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "leadscore: installing ${missing[*]}"
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

make -s -j"$(nproc)" PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO make -s install PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
