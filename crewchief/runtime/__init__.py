"""What a run needs besides its graph: shared resources, node dependencies, the executor."""
