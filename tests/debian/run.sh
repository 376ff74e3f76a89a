#!/usr/bin/env bash
# Debian package test: builds postgresql-15-leadscore with `dpkg-buildpackage -us -uc -b` from a
# copy of the checkout (tracked files plus untracked ones git does not ignore), installs the
# .deb, checks what it contains, runs pg_regress + isolation against the installed files,
# checks `leadscore-report --help` and META.json. Leaves the package installed: its files are
# the ones `make install` put there. Needs root (or sudo) to install the package.
set -euo pipefail
cd "$(dirname "$0")/../.."
root="$(pwd)"
export PGUSER="${PGUSER:-postgres}"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"

fail=0
check() { if eval "$2"; then echo "debian: $1"; else echo "debian: FAILED: $1"; fail=1; fi; }
version="$(sed -n "s/^default_version = '\(.*\)'/\1/p" leadscore.control)"
pgversion=15
package="postgresql-$pgversion-leadscore"
work="$(mktemp -d /tmp/leadscore-debian.XXXXXX)"
# The throwaway clusters run as postgres and read the extension from here.
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT

# META.json (PGXN) and debian/changelog carry the version of leadscore.control.
meta_check() {
    perl -MJSON::PP -e '
        my ($file, $version) = @ARGV;
        open my $fh, "<", $file or die "cannot open $file: $!\n";
        my $m = JSON::PP->new->decode(do { local $/; <$fh> });
        my @errors;
        for my $key (qw(name abstract description version maintainer license provides meta-spec prereqs resources generated_by tags)) {
            push @errors, "$key is missing" unless defined $m->{$key};
        }
        push @errors, "name is not leadscore" unless ($m->{name} // "") eq "leadscore";
        push @errors, "version $m->{version} is not default_version $version" unless ($m->{version} // "") eq $version;
        my $p = $m->{provides}{leadscore} // {};
        push @errors, "provides.leadscore.version is not $version" unless ($p->{version} // "") eq $version;
        push @errors, "provides.leadscore.file $p->{file} does not exist" unless defined $p->{file} && -f $p->{file};
        push @errors, "provides.leadscore.abstract is missing" unless $p->{abstract};
        push @errors, "meta-spec is not 1.0.0" unless ($m->{"meta-spec"}{version} // "") eq "1.0.0";
        push @errors, "prereqs do not require PostgreSQL 15.0.0"
            unless ($m->{prereqs}{runtime}{requires}{PostgreSQL} // "") eq "15.0.0";
        print STDERR "META.json: $_\n" for @errors;
        exit(@errors ? 1 : 0);
    ' META.json "$version"
}
check "META.json parses and carries version $version (leadscore.control)" meta_check
deb_version="$(dpkg-parsechangelog -S Version)"
check "debian/changelog version $deb_version is $version-N" "[ '${deb_version%-*}' = '$version' ]"

# A copy of the checkout: what a clean clone would hold once the current changes are committed.
src="$work/leadscore-$version"
mkdir "$src"
if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files -z --cached --others --exclude-standard |
        while IFS= read -r -d '' f; do
            if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\0' "$f"; fi
        done | tar --null -T - -cf - | tar -xf - -C "$src"
else
    tar --exclude=./.git --exclude=./build --exclude=./results --exclude=./output_iso \
        --exclude='*.o' --exclude='*.so' --exclude='*.bc' --exclude=./tools/leadscore-report/leadscore-report --exclude=./tools/leadscore-sync/leadscore-sync \
        -cf - . | tar -xf - -C "$src"
fi
check "debian/control is generated from debian/control.in (pg_buildext checkcontrol)" \
    "(cd '$src' && pg_buildext checkcontrol) >'$work/checkcontrol' 2>&1 || { cat '$work/checkcontrol'; false; }"
echo "debian: building $package in $src (dpkg-buildpackage -us -uc -b; its log is shown on failure)"
if ! (cd "$src" && dpkg-buildpackage -us -uc -b -j"$(nproc)") >"$work/dpkg-buildpackage.log" 2>&1; then
    tail -n 150 "$work/dpkg-buildpackage.log"
    echo "debian: the failures in dpkg-buildpackage's log:"
    grep -E '\.\.\. FAILED|tests failed|not ok|(^| )error:' "$work/dpkg-buildpackage.log" | sed 's/^/debian:   /' || true
    echo "debian package test: FAILED (dpkg-buildpackage)"
    exit 1
fi
grep -E '^(dpkg-deb: building package|### End)' "$work/dpkg-buildpackage.log" | sed 's/^/debian:   /'
debs=("$work/${package}_${version}"-*_*.deb)
[ -f "${debs[0]}" ] || { echo "debian package test: FAILED (no ${package}_${version}-*.deb built)"; exit 1; }
deb="${debs[0]}"
echo "debian: built $(basename "$deb")"

# Installed over what `make install` (scripts/setup.sh) put there: the same files.
if ! DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --reinstall --no-install-recommends "$deb" \
        >"$work/apt.log" 2>&1; then
    tail -n 40 "$work/apt.log"
    echo "debian package test: FAILED (apt-get install)"
    exit 1
fi
check "$package $(dpkg-query -W -f='${Version}' "$package") is installed" \
    "dpkg-query -W -f='\${Status}' $package | grep -q 'install ok installed'"

dpkg -L "$package" >"$work/files"
has() { grep -qxF "$1" "$work/files"; }
has_doc() { grep -qxE "/usr/share/doc/$package/$1(\.gz)?" "$work/files"; }
extdir="/usr/share/postgresql/$pgversion/extension"
check "the library: /usr/lib/postgresql/$pgversion/lib/leadscore.so" "has /usr/lib/postgresql/$pgversion/lib/leadscore.so"
check "the control file: $extdir/leadscore.control" "has $extdir/leadscore.control"
check "the built install script: $extdir/leadscore--$version.sql" "has $extdir/leadscore--$version.sql"
missing=""
for f in extension/leadscore--*.sql; do has "$extdir/$(basename "$f")" || missing="$missing $(basename "$f")"; done
check "every frozen and upgrade script of extension/ ($(ls extension/leadscore--*.sql | wc -l) files)" "[ -z '$missing' ] || { echo 'missing:$missing'; false; }"
check "/usr/bin/leadscore-report and /usr/lib/postgresql/$pgversion/bin/leadscore-report" \
    "has /usr/bin/leadscore-report && has /usr/lib/postgresql/$pgversion/bin/leadscore-report && [ -x /usr/bin/leadscore-report ]"
check "/usr/bin/leadscore-sync and /usr/lib/postgresql/$pgversion/bin/leadscore-sync" \
    "has /usr/bin/leadscore-sync && has /usr/lib/postgresql/$pgversion/bin/leadscore-sync && [ -x /usr/bin/leadscore-sync ]"
check "leadscore-sync --help exits 0" "/usr/bin/leadscore-sync --help >/dev/null"
missing=""
for f in README.md CHANGELOG.md changelog docs/*.md; do has_doc "$(basename "$f")" || missing="$missing $(basename "$f")"; done
check "the docs in /usr/share/doc/$package: README.md, CHANGELOG.md, docs/*.md" "[ -z '$missing' ] || { echo 'missing:$missing'; false; }"
check "no LLVM bitcode (the Makefile builds none)" "! grep -q '/bitcode' '$work/files'"
check "installed files equal the package's (dpkg --verify)" "dpkg --verify $package"

# The package's autopkgtest: pg_buildext installcheck (pg_regress + isolation on a throwaway
# cluster, against the installed package), from the copy of the checkout.
echo "debian: pg_regress + isolation against the installed package (debian/tests/installcheck)"
if (cd "$src" && debian/tests/installcheck) >"$work/installcheck.log" 2>&1; then
    grep -E 'tests passed|tests failed' "$work/installcheck.log" | sed 's/^ */debian:   /' || true
    echo "debian: pg_regress + isolation pass against the installed package"
else
    tail -n 60 "$work/installcheck.log"
    for d in "$src/regression.diffs" "$src/output_iso/regression.diffs"; do [ -f "$d" ] && cat "$d"; done
    echo "debian: FAILED: pg_regress + isolation against the installed package"
    fail=1
fi

# leadscore-report --help: exit 0, every option parse_args accepts, and a full example.
help_rc=0
/usr/bin/leadscore-report --help >"$work/help" 2>"$work/help.err" || help_rc=$?
check "leadscore-report --help exits 0" "[ $help_rc -eq 0 ]"
options="$(grep -o 'a == "[^"]*"' tools/leadscore-report/leadscore_report.cpp | sed 's/a == "\(.*\)"/\1/' | sort -u)"
check "parse_args accepts options ($(echo $options))" "[ -n '$options' ]"
missing=""
for opt in $options CONNINFO; do grep -qE -- "(^|[ ,\[])$opt([ ,=]|$)" "$work/help" || missing="$missing $opt"; done
check "leadscore-report --help mentions every option" "[ -z '$missing' ] || { echo 'missing:$missing'; false; }"
check "leadscore-report --help shows a full example command line" \
    "grep -qE '^ +leadscore-report .*(--model|-m) [a-z]+.*(-o|--output) [^ ]+' '$work/help'"
check "leadscore-report without --model still fails with usage (exit 2)" \
    "/usr/bin/leadscore-report >/dev/null 2>&1; [ \$? -eq 2 ]"

[ $fail -eq 0 ] && echo "debian package test: ok" || { echo "debian package test: FAILED"; exit 1; }
