"""Benchmarks for crewchief (run from the repository root, e.g. ``python -m bench.operations``)."""
