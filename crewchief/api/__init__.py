"""HTTP interface (REST + SSE, OpenAI-compatible gateway)."""
