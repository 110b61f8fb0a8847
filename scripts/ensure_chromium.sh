#!/usr/bin/env bash
# Make sure Debian's chromium is at /usr/bin/chromium for the Playwright browser tests.
#
# Playwright's own browser download (`playwright install`) cannot work on our machines: only
# PyPI, Debian's apt and npm are reachable. So the tests drive Debian's chromium through
# Playwright's `executable_path` instead.
#
# - chromium present: print its version and succeed.
# - missing, running as root with apt-get: `apt-get update` then `apt-get install -y chromium`.
# - missing and it cannot be installed: print how to install it. Under CI=true this is a failure
#   (exit 1), because the browser tests must run there; elsewhere it succeeds and the browser
#   tests skip themselves with the same hint.
#
# CHROMIUM overrides the path (default /usr/bin/chromium).
set -euo pipefail

chromium="${CHROMIUM:-/usr/bin/chromium}"

report() {
    echo "ensure_chromium: $("$chromium" --version 2>/dev/null || echo chromium) at $chromium"
}

if [ -x "$chromium" ]; then
    report
    exit 0
fi

if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    echo "ensure_chromium: $chromium is missing; installing Debian's chromium with apt-get"
    # Retry a few times: a mirror can fail transiently.
    for attempt in 1 2 3; do
        if apt-get update -q && apt-get install -y -q chromium; then
            break
        fi
        if [ "$attempt" = 3 ]; then
            echo "ensure_chromium: apt-get failed 3 times" >&2
            exit 1
        fi
        sleep $((attempt * 10))
    done
    if [ -x "$chromium" ]; then
        report
        exit 0
    fi
    echo "ensure_chromium: apt-get installed chromium, but $chromium is still missing" >&2
    exit 1
fi

msg="ensure_chromium: $chromium is missing and cannot be installed here (not root, or no apt-get).
Install Debian's chromium yourself:  sudo apt-get update && sudo apt-get install -y chromium"
if [ "${CI:-}" = "true" ]; then
    echo "$msg" >&2
    echo "ensure_chromium: CI=true, so this is a failure: the browser tests must run in CI." >&2
    exit 1
fi
echo "$msg" >&2
echo "ensure_chromium: the browser tests will be skipped." >&2
exit 0
