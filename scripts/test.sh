#!/usr/bin/env bash
# Install crewchief into .venv and run the whole test suite (SQLite, PostgreSQL and Redis).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh

# The PostgreSQL tests talk to the server on 127.0.0.1:5432 (trust auth).
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
        echo "starting PostgreSQL"
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start || true
        for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
    fi
fi

# The scaled-mode tests use the Redis on 127.0.0.1:6379 (each run its own key prefix).
if ! (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then
    if command -v redis-server >/dev/null; then
        echo "starting Redis"
        redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
            || true
        for _ in $(seq 1 30); do (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null && break; sleep 1; done
    fi
fi

# The dashboard's browser tests drive Debian's Chromium (Playwright downloads no browser).
# CREWCHIEF_REQUIRE_BROWSER=1: should it still be missing, they fail instead of skipping.
if [ ! -x /usr/bin/chromium ]; then
    echo "installing Debian's chromium"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    { $sudo apt-get update -qq \
        && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            --no-install-recommends chromium >/dev/null; } \
        || echo "could not install chromium: the browser tests will fail" >&2
fi
export CREWCHIEF_REQUIRE_BROWSER=1

.venv/bin/ruff check --quiet crewchief tests bench

# The real-model tests use the 0.5B local model and llama-server. Both are cached in the
# crewchief home, so only the first run on a machine downloads (0.5 GB) and builds (minutes).
.venv/bin/crewchief models pull qwen2.5-coder-0.5b >/dev/null
.venv/bin/crewchief models server >/dev/null

# pytest's exit code 5 means it collected nothing: for us that is a failure.
run_pytest() {
    set +e
    "$@"
    local rc=$?
    set -e
    if [ "$rc" -eq 5 ]; then
        echo "pytest collected no tests: that is a failure" >&2
        return 1
    fi
    return "$rc"
}

rc=0
run_pytest .venv/bin/python -m pytest "$@" || rc=$?
# The schemathesis pass over the OpenAPI document, in its own environment (see pyproject's
# fuzz extra). Skipped when arguments select other tests.
if [ "$#" -eq 0 ]; then
    echo "API fuzz pass (schemathesis, .venv-fuzz)"
    run_pytest .venv-fuzz/bin/python -m pytest -q -p no:cacheprovider tests/api/test_schemathesis.py \
        || rc=$?
fi
exit "$rc"
