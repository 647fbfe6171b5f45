"""The OpenAI-compatible role gateway: roles, routes to models, upstream calls.

Served by the REST app at ``/v1/chat/completions`` and ``/v1/models``
(:mod:`crewchief.api.routes.gateway`).
"""
