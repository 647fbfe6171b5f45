#!/usr/bin/env bash
# Set up crewchief and run one planned operation on the sample workspace.
#
# Models: whatever CREWCHIEF_MODEL / CREWCHIEF_*_MODEL or crewchief.toml bind; with
# nothing configured every alias uses the scripted `fake:default` provider (no
# network, no keys), and the first line of the output says so.
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS="${EXTRAS:-all}" scripts/bootstrap.sh
export CREWCHIEF_HOME="${CREWCHIEF_HOME:-$PWD/.crewchief}"
workspace="$(mktemp -d)"
cp -r examples/sample-workspace/. "$workspace/"
echo "workspace: $workspace (a copy of examples/sample-workspace)"
exec .venv/bin/crewchief run "${1:-Add a docstring to every function in utils.py}" --workspace "$workspace"
