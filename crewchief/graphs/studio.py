"""The graph that ``langgraph.json`` points at, for LangGraph Studio and ``langgraph dev``.

Compiled without a checkpointer: the LangGraph server brings its own. Settings
are read from the environment on the first run, not at import.
"""

from crewchief.graphs.operation import build_operation_graph

graph = build_operation_graph().compile(name="crewchief")
