#!/usr/bin/env bash
# Make the PostgreSQL server binaries (initdb, pg_ctl, postgres) available to the tests (and CI).
# Tests start private servers themselves (test/helpers/postgres.ts); this script starts none.
#
# Fast path (no output): $KOALA_PG_BIN, or a /usr/lib/postgresql/<version>/bin (Debian's layout),
# holds all three. As root the `postgres` system user must exist too: PostgreSQL refuses to run
# as root, so the test helper runs the server as that user (the Debian package creates it).
#
# Otherwise, as root on Debian: `apt-get install -y --no-install-recommends postgresql`, running
# `apt-get update` first only if the install fails for want of (fresh) package lists. The package
# would create and start a default cluster; a temporary /usr/sbin/policy-rc.d (only if none exists)
# keeps it from starting.
#
# Environment:
#   KOALA_PG_BIN  directory holding initdb, pg_ctl and postgres (nothing is installed)
#
# On failure it prints one line `ensure-postgres: <what failed>; fix: <what to do>` and exits 1.
set -euo pipefail

fail() {
  echo "ensure-postgres: $1; fix: $2" >&2
  exit 1
}

has_server_bins() {
  [[ -x "$1/initdb" && -x "$1/pg_ctl" && -x "$1/postgres" ]]
}

# Newest Debian-layout bin dir holding all three, or nothing.
find_bin_dir() {
  local dir best="" best_version=-1 version
  for dir in /usr/lib/postgresql/*/bin; do
    version="${dir#/usr/lib/postgresql/}"
    version="${version%/bin}"
    [[ "$version" =~ ^[0-9]+$ ]] || continue
    if has_server_bins "$dir" && ((version > best_version)); then
      best="$dir"
      best_version="$version"
    fi
  done
  [[ -n "$best" ]] && echo "$best"
}

check_user() {
  if [[ $EUID -eq 0 ]] && ! id -u postgres >/dev/null 2>&1; then
    fail "running as root but there is no 'postgres' system user to run the test servers as (PostgreSQL refuses root)" \
      "apt-get install --reinstall postgresql-common (it creates the user), or run the tests as a non-root user"
  fi
}

# ---- fast path ----------------------------------------------------------------------------------
if [[ -n "${KOALA_PG_BIN:-}" ]]; then
  has_server_bins "$KOALA_PG_BIN" ||
    fail "KOALA_PG_BIN=$KOALA_PG_BIN does not hold executable initdb, pg_ctl and postgres" \
      "point KOALA_PG_BIN at a PostgreSQL bin directory, or unset it to use /usr/lib/postgresql/<version>/bin"
  check_user
  exit 0
fi
if find_bin_dir >/dev/null; then
  check_user
  exit 0
fi

# ---- slow path: install Debian's postgresql ------------------------------------------------------
command -v apt-get >/dev/null ||
  fail "PostgreSQL server binaries not found in /usr/lib/postgresql/*/bin and apt-get is missing" \
    "install a PostgreSQL server (initdb, pg_ctl, postgres) and set KOALA_PG_BIN to its bin directory"
[[ $EUID -eq 0 ]] ||
  fail "PostgreSQL server binaries not found in /usr/lib/postgresql/*/bin, and installing them needs root" \
    "run as root: apt-get install -y --no-install-recommends postgresql (or set KOALA_PG_BIN)"

log="$(mktemp "${TMPDIR:-/tmp}/koala-ensure-postgres.XXXXXX")"
policy=/usr/sbin/policy-rc.d
own_policy=""
cleanup() {
  rm -f "$log"
  [[ -n "$own_policy" ]] && rm -f "$policy"
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
if [[ ! -e "$policy" ]]; then
  # invoke-rc.d asks this script before starting a service; 101 = "not allowed".
  printf '#!/bin/sh\n# temporary, from koala scripts/ensure-postgres.sh: do not start services\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  own_policy=1
fi

apt_install() {
  DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=300 install --no-install-recommends postgresql >"$log" 2>&1
}
# apt's reason for a failure: its last "E:" line.
apt_error() {
  local reason
  reason="$(grep -E '^E:' "$log" | tail -n 1 || true)"
  echo "${reason:-see apt-get output}"
}

echo "ensure-postgres: installing postgresql with apt-get (no server is started)" >&2
if ! apt_install; then
  # No package lists yet (fresh image), or stale ones that name files the mirror no longer has.
  if grep -qE "Unable to locate package|has no installation candidate|Failed to fetch|404 +Not Found" "$log"; then
    echo "ensure-postgres: package lists missing or stale; running apt-get update" >&2
    DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=300 update >"$log" 2>&1 ||
      fail "apt-get update failed ($(apt_error))" "make the Debian mirrors in /etc/apt/sources.list* reachable and rerun"
    apt_install ||
      fail "apt-get install postgresql failed after apt-get update ($(apt_error))" "install postgresql by hand, or set KOALA_PG_BIN"
  else
    fail "apt-get install postgresql failed ($(apt_error))" "install postgresql by hand, or set KOALA_PG_BIN"
  fi
fi

bin="$(find_bin_dir || true)"
[[ -n "$bin" ]] ||
  fail "postgresql installed but no /usr/lib/postgresql/<version>/bin holds initdb, pg_ctl and postgres" \
    "install the postgresql-<version> package, or set KOALA_PG_BIN"
check_user
echo "ensure-postgres: PostgreSQL server binaries ready in $bin" >&2
