"""One module per graph node. Each node is ``async def node(state, deps) -> dict``."""
