#!/usr/bin/env bash
# Make sure the engines of the backend parity tests are installed: a Java runtime for PySpark
# (Debian's openjdk-17-jre-headless) and PostgreSQL's server binaries (Debian's postgresql,
# initdb and pg_ctl under /usr/lib/postgresql/*/bin).
#
# The tests start and stop the engines themselves (tests/_backends.py): Spark local[2] with no
# downloaded jars, and a throwaway PostgreSQL cluster in a temporary folder on a loopback port.
#
# - both present: print their versions and succeed.
# - something missing, running as root with apt-get: `apt-get update`, then install it.
# - missing and it cannot be installed: print how to install it. Under CI=true this is a failure
#   (exit 1), because the parity tests must run there; elsewhere it succeeds and those tests
#   skip themselves with the same hint.
set -euo pipefail

have_java() { command -v java >/dev/null 2>&1; }
have_postgres() { compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; }

report() {
    echo "ensure_backends: $(java -version 2>&1 | head -n 1); PostgreSQL $(ls -d /usr/lib/postgresql/*/bin | head -n 1)"
}

missing=()
have_java || missing+=(openjdk-17-jre-headless)
have_postgres || missing+=(postgresql)

if [ "${#missing[@]}" = 0 ]; then
    report
    exit 0
fi

if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    echo "ensure_backends: installing Debian's ${missing[*]} with apt-get"
    # Retry a few times: a mirror can fail transiently.
    for attempt in 1 2 3; do
        if apt-get update -q && apt-get install -y -q --no-install-recommends "${missing[@]}"; then
            break
        fi
        if [ "$attempt" = 3 ]; then
            echo "ensure_backends: apt-get failed 3 times" >&2
            exit 1
        fi
        sleep $((attempt * 10))
    done
    if have_java && have_postgres; then
        report
        exit 0
    fi
    echo "ensure_backends: apt-get ran, but java or initdb is still missing" >&2
    exit 1
fi

msg="ensure_backends: ${missing[*]} missing and cannot be installed here (not root, or no apt-get).
Install them yourself:  sudo apt-get update && sudo apt-get install -y ${missing[*]}"
if [ "${CI:-}" = "true" ]; then
    echo "$msg" >&2
    echo "ensure_backends: CI=true, so this is a failure: the parity tests must run in CI." >&2
    exit 1
fi
echo "$msg" >&2
echo "ensure_backends: the Spark and PostgreSQL parity tests will be skipped." >&2
exit 0
