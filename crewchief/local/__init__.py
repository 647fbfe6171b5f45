"""Local models: the pinned catalog, the model store, the llama-server build and supervisor."""
