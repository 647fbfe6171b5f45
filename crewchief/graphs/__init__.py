"""Graph builders. ``build_operation_graph`` returns the uncompiled operation graph."""

from crewchief.graphs.operation import build_operation_graph

__all__ = ["build_operation_graph"]
