#!/usr/bin/env bash
# Make a real `consul` binary available to the tests (and CI) without installing anything system-wide.
#
# Fast path: if $KOALA_CONSUL_BIN or <repo>/.cache/consul/consul runs (`consul version`), do nothing.
# Otherwise fetch Debian bullseye's `consul` package (1.8.x; bookworm has none) from the same Debian
# mirror this machine's apt already uses, with a private apt state: a temporary sources list, lists
# dir, status file and cache under a temp dir. The system's sources, lists and dpkg database are
# never touched, so no extra suite is ever enabled, and the package is not installed: the .deb is
# unpacked with `dpkg-deb -x` and only its binary is copied into .cache/consul/. Needs no root.
#
# Environment:
#   KOALA_CONSUL_BIN     use this consul binary instead (nothing is downloaded)
#   KOALA_DEBIAN_MIRROR  Debian mirror URL to use instead of the one read from the apt sources
#
# On failure it prints one line `ensure-consul: <what failed>; fix: <what to do>` and exits 1.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="$repo/.cache/consul"
bin="$cache/consul"

fail() {
  echo "ensure-consul: $1; fix: $2" >&2
  exit 1
}

# `consul version` prints "Consul v1.8.7" first; prints the version or fails.
consul_version() {
  local out
  # Whole output, then the first line: `| head -n 1` could SIGPIPE consul and fail under pipefail.
  out="$("$1" version 2>/dev/null)" || return 1
  out="${out%%$'\n'*}"
  [[ "$out" =~ ^Consul\ v([0-9][0-9.]*) ]] || return 1
  echo "${BASH_REMATCH[1]}"
}

# ---- fast path ----------------------------------------------------------------------------------
if [[ -n "${KOALA_CONSUL_BIN:-}" ]]; then
  consul_version "$KOALA_CONSUL_BIN" >/dev/null ||
    fail "KOALA_CONSUL_BIN=$KOALA_CONSUL_BIN does not run \`consul version\`" \
      "point KOALA_CONSUL_BIN at a working consul binary, or unset it to use .cache/consul/consul"
  exit 0
fi
if [[ -x "$bin" ]] && consul_version "$bin" >/dev/null; then
  exit 0
fi

# ---- slow path: one download at a time per checkout ----------------------------------------------
for tool in apt-get apt-config dpkg dpkg-deb; do
  command -v "$tool" >/dev/null ||
    fail "$tool not found (consul is fetched from Debian's bullseye suite)" \
      "run on a Debian machine, or set KOALA_CONSUL_BIN to a consul binary"
done
mkdir -p "$cache"
if command -v flock >/dev/null; then
  exec 9>"$cache/.lock"
  flock 9
  # Another run may have finished while we waited.
  if [[ -x "$bin" ]] && consul_version "$bin" >/dev/null; then exit 0; fi
fi

tmp="$(mktemp -d "${TMPDIR:-/tmp}/koala-consul.XXXXXX")"
cleanup() { rm -rf "$tmp" "$cache/consul.tmp.$$"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
# apt (as root) downloads as the unprivileged _apt user: let it reach the private dirs.
chmod 755 "$tmp"

# ---- find the Debian mirror this machine uses ----------------------------------------------------
# Reads the one-line format (sources.list, *.list) and deb822 (*.sources), in the files apt itself
# reads (Dir::Etc::sourcelist, Dir::Etc::sourceparts). A candidate is a `deb` entry whose suite is
# this system's codename (best) or another plain Debian release name; `-security`/`-updates`
# suites, disabled entries and third-party repositories do not qualify.
codename=""
if [[ -r /etc/os-release ]]; then codename="$(. /etc/os-release && echo "${VERSION_CODENAME:-}")"; fi
sourcelist=/etc/apt/sources.list
sourceparts=/etc/apt/sources.list.d
eval "$(apt-config shell sourcelist Dir::Etc::sourcelist/f sourceparts Dir::Etc::sourceparts/d)"
files=()
[[ -f "$sourcelist" ]] && files+=("$sourcelist")
for f in "${sourceparts%/}"/*.list "${sourceparts%/}"/*.sources; do
  [[ -f "$f" ]] && files+=("$f")
done

find_mirrors() {
  # Prints "rank<TAB>uri<TAB>signed-by" per candidate.
  local f
  for f in "$@"; do
    if [[ "$f" == *.sources ]]; then
      awk -v codename="$codename" -f - "$f" <<'AWK'
function rank(s) {
  if (codename != "" && s == codename) return 0
  if (s ~ /^(buster|bullseye|bookworm|trixie|forky|duke|sid|oldstable|stable|testing|unstable)$/) return 1
  return -1
}
function flush(   i, j, n, m, u, s, best, r) {
  if (types ~ /(^|[ \t])deb([ \t]|$)/ && tolower(enabled) != "no") {
    best = -1
    n = split(suites, s, /[ \t]+/)
    for (i = 1; i <= n; i++) { r = rank(s[i]); if (r >= 0 && (best < 0 || r < best)) best = r }
    if (best >= 0) {
      m = split(uris, u, /[ \t]+/)
      for (j = 1; j <= m; j++) if (u[j] != "") print best "\t" u[j] "\t" signedby
    }
  }
  types = ""; uris = ""; suites = ""; enabled = ""; signedby = ""; field = ""
}
/^#/ { next }
/^[ \t]*$/ { flush(); next }
/^[ \t]/ { next }  # continuation line (e.g. an inline key)
{
  k = tolower($0); sub(/:.*/, "", k)
  v = $0; sub(/^[^:]*:[ \t]*/, "", v); sub(/[ \t]+$/, "", v)
  if (k == "types") types = v
  else if (k == "uris") uris = v
  else if (k == "suites") suites = v
  else if (k == "enabled") enabled = v
  else if (k == "signed-by" && v ~ /^\//) signedby = v
}
END { flush() }
AWK
    else
      awk -v codename="$codename" '
        function rank(s) {
          if (codename != "" && s == codename) return 0
          if (s ~ /^(buster|bullseye|bookworm|trixie|forky|duke|sid|oldstable|stable|testing|unstable)$/) return 1
          return -1
        }
        {
          sub(/#.*/, "")
          if ($1 != "deb") next
          line = $0; sub(/^[ \t]*deb[ \t]+/, "", line)
          signedby = ""
          if (line ~ /^\[/) {
            opts = line; sub(/\].*/, "", opts); sub(/^\[/, "", opts)
            line = substr(line, index(line, "]") + 1)
            n = split(opts, o, /[ \t]+/)
            for (i = 1; i <= n; i++) if (o[i] ~ /^signed-by=\//) { signedby = o[i]; sub(/^signed-by=/, "", signedby) }
          }
          split(line, w, /[ \t]+/)
          if (w[1] == "") { uri = w[2]; suite = w[3] } else { uri = w[1]; suite = w[2] }
          r = rank(suite)
          if (r >= 0) print r "\t" uri "\t" signedby
        }' "$f"
    fi
  done | sort -s -t "$(printf '\t')" -k1,1n
}

if [[ -n "${KOALA_DEBIAN_MIRROR:-}" ]]; then
  candidates="$KOALA_DEBIAN_MIRROR"
else
  # Unique mirrors, best first; each line "uri<TAB>signed-by".
  candidates="$(find_mirrors "${files[@]}" | cut -f2,3 | grep -v '^cdrom:' | awk -F '\t' '!seen[$1]++' || true)"
  [[ -n "$candidates" ]] ||
    fail "no Debian mirror found in the apt sources (${files[*]:-none})" \
      "set KOALA_DEBIAN_MIRROR=<Debian mirror URL>, or KOALA_CONSUL_BIN to a consul binary"
fi
# The full Debian keyring also holds bullseye's keys; a source's own Signed-By may name only its release's.
keyring=""
[[ -r /usr/share/keyrings/debian-archive-keyring.gpg ]] && keyring=/usr/share/keyrings/debian-archive-keyring.gpg

# ---- private apt state: nothing of the system's apt configuration changes -----------------------
arch="$(dpkg --print-architecture)"
apt_opts=(
  -q
  -o "Dir::Etc::sourcelist=$tmp/sources.list"
  -o "Dir::Etc::sourceparts=-"
  -o "Dir::Etc::preferences=$tmp/preferences"
  -o "Dir::Etc::preferencesparts=$tmp/prefs.d"
  -o "Dir::State::Lists=$tmp/lists"
  -o "Dir::State::status=$tmp/status"
  -o "Dir::Cache=$tmp/cache"
  -o "Dir::Cache::archives=$tmp/archives"
  -o "Acquire::Languages=none"
  -o "APT::Get::List-Cleanup=0"
)
# apt's reason for a failure: the indented line after "Err:", else the last "E:" line.
apt_error() {
  local reason
  reason="$(awk '/^Err:/ { getline; sub(/^[ \t]+/, ""); print; exit }' "$1")"
  [[ -n "$reason" ]] || reason="$(grep -E '^E:' "$1" | tail -n 1 || true)"
  echo "${reason:-see apt-get output}"
}

# Try each mirror in turn: update the private lists for 'bullseye main', then download the .deb.
tried=()
deb=""
while IFS=$'\t' read -r mirror signedby; do
  [[ -n "$mirror" ]] || continue
  rm -rf "$tmp/lists" "$tmp/archives" "$tmp/cache" "$tmp/dl"
  mkdir -p "$tmp/lists/partial" "$tmp/archives/partial" "$tmp/cache" "$tmp/prefs.d" "$tmp/dl"
  # As root apt downloads as the unprivileged _apt user, who must be able to write the .deb.
  if [[ $EUID -eq 0 ]] && id _apt >/dev/null 2>&1; then chown _apt "$tmp/dl"; fi
  : >"$tmp/status"
  : >"$tmp/preferences"
  opts="arch=$arch"
  key="${keyring:-$signedby}"
  [[ -n "$key" ]] && opts+=" signed-by=$key"
  echo "deb [$opts] $mirror bullseye main" >"$tmp/sources.list"
  echo "ensure-consul: fetching consul from Debian bullseye via $mirror (private apt state, nothing installed)" >&2
  if ! apt-get "${apt_opts[@]}" update >"$tmp/apt.log" 2>&1 || grep -qE '^(E:|Err:)' "$tmp/apt.log"; then
    tried+=("apt-get update of bullseye from $mirror: $(apt_error "$tmp/apt.log")")
    continue
  fi
  if ! (cd "$tmp/dl" && apt-get "${apt_opts[@]}" download consul) >"$tmp/apt.log" 2>&1; then
    tried+=("apt-get download consul from $mirror bullseye: $(apt_error "$tmp/apt.log")")
    continue
  fi
  deb="$(ls "$tmp/dl"/consul_*.deb 2>/dev/null | head -n 1 || true)"
  [[ -n "$deb" ]] && break
  tried+=("apt-get download consul from $mirror left no .deb")
done <<<"$candidates"
if [[ -z "$deb" ]]; then
  fail "could not fetch consul ($(printf '%s; ' "${tried[@]}" | sed 's/; $//'))" \
    "make a Debian mirror that carries bullseye reachable (or set KOALA_DEBIAN_MIRROR), or set KOALA_CONSUL_BIN to a consul binary"
fi
dpkg-deb -x "$deb" "$tmp/x" 2>"$tmp/extract.log" ||
  fail "dpkg-deb -x $(basename "$deb") failed ($(tail -n 1 "$tmp/extract.log"))" "free disk space in ${TMPDIR:-/tmp} and rerun"
[[ -f "$tmp/x/usr/bin/consul" ]] || fail "$(basename "$deb") has no usr/bin/consul" "set KOALA_CONSUL_BIN to a consul binary"

version="$(consul_version "$tmp/x/usr/bin/consul" || true)"
[[ "$version" == 1.8.* ]] ||
  fail "the downloaded consul reports version '${version:-none}', expected 1.8.x" "set KOALA_CONSUL_BIN to a consul 1.8 binary"

# Install atomically: a concurrent reader sees the old file or the complete new one.
cp "$tmp/x/usr/bin/consul" "$cache/consul.tmp.$$"
chmod 755 "$cache/consul.tmp.$$"
mv -f "$cache/consul.tmp.$$" "$bin"
echo "ensure-consul: consul $version ready at ${bin#"$repo"/}" >&2
