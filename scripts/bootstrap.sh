#!/usr/bin/env bash
# Create .venv (if needed) and install crewchief with everything its tests use.
# Idempotent: a second run only checks that the install is current.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "crewchief needs Python 3.11 or newer (found: $("$PYTHON" --version 2>&1))" >&2
    exit 1
fi
# install VENV EXTRAS CHECK: create VENV if needed and install crewchief[EXTRAS] into it,
# unless it is current; CHECK is Python code that fails when the install is broken.
# The stamp file lists the extras installed so far: asking for one it lacks (the demo
# installs [all], the tests need [dev]) installs the union, never fewer than before.
install() {
    local venv="$1" extras="$2" check="$3"
    if [ ! -x "$venv/bin/python" ]; then
        echo "creating $venv with $("$PYTHON" --version)"
        "$PYTHON" -m venv "$venv"
    fi
    local stamp="$venv/.crewchief-installed" have="" missing=""
    if [ -f "$stamp" ] && [ ! pyproject.toml -nt "$stamp" ]; then
        have="$(cat "$stamp")"
    fi
    local extra
    for extra in ${extras//,/ }; do
        case ",$have," in *",$extra,"*) ;; *) missing="$missing $extra" ;; esac
    done
    if [ -n "$missing" ]; then
        local wanted
        wanted="$(printf '%s\n' ${have//,/ } ${extras//,/ } | sort -u | paste -sd, -)"
        echo "installing crewchief[$wanted] into $venv"
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip 2>&1 \
            | grep -v "^WARNING: Location" || true
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[$wanted]" 2>&1 \
            | grep -v "^WARNING: Location" || true
        "$venv/bin/python" -c "$check" # fail here, not later, if the install is broken
        echo "$wanted" >"$stamp"
    fi
}

install .venv "${EXTRAS:-dev}" "import crewchief.client.facade, crewchief.api.app"
# The API fuzz pass (schemathesis) needs packages the studio extra conflicts with.
if [ "${EXTRAS:-dev}" = "dev" ]; then
    install .venv-fuzz fuzz "import crewchief.api.app, schemathesis"
fi
