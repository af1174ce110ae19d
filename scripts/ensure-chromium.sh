#!/usr/bin/env bash
# Makes sure Debian's Chromium is installed for the browser test (test/chat.test.ts drives it with
# playwright-core; Playwright's own browser download cannot run here). Idempotent: does nothing
# when it is there (or KOALA_CHROMIUM names one). Otherwise, as root on Debian, installs the
# `chromium` package, refreshing the package lists only if the first attempt fails for want of them.
set -euo pipefail

browser="${KOALA_CHROMIUM:-/usr/bin/chromium}"
if [ -x "$browser" ]; then exit 0; fi

fail() { echo "ensure-chromium: $1; fix: $2" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "chromium is not installed and this is not root" "install Debian's chromium package, or set KOALA_CHROMIUM to a Chromium binary"
command -v apt-get >/dev/null || fail "chromium is not installed and there is no apt-get" "install Chromium, or set KOALA_CHROMIUM to its binary"

install() { DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >/tmp/ensure-chromium.log 2>&1; }
if ! install; then
  apt-get update -q >/tmp/ensure-chromium.log 2>&1 || fail "apt-get update failed ($(tail -n 1 /tmp/ensure-chromium.log))" "check the machine's Debian mirror"
  install || fail "apt-get install chromium failed ($(tail -n 1 /tmp/ensure-chromium.log))" "install it by hand, or set KOALA_CHROMIUM"
fi
[ -x "$browser" ] || fail "chromium installed but $browser is missing" "set KOALA_CHROMIUM to the Chromium binary"
