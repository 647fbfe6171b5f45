"""Graph builders: state and context in ``state``, the operation graph in ``operation``.

``build_operation_graph`` is re-exported lazily so importing ``crewchief.state``
does not pull in every node.
"""

from typing import Any

__all__ = ["build_operation_graph"]


def __getattr__(name: str) -> Any:
    if name == "build_operation_graph":
        from crewchief.graphs.operation import build_operation_graph

        return build_operation_graph
    raise AttributeError(name)
