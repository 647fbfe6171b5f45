"""Who calls through another agent protocol, as the API authenticated them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Principal:
    """The owner whose operations the calls see, and the API key used.

    ``owner`` None sees every owner's operations (the local user of ``crewchief mcp``, the
    keyless dev mode), as the REST API's caller does.
    """

    owner: str | None
    key_id: str | None = None

    @property
    def scope(self) -> dict[str, str]:
        """Keyword arguments limiting a facade call to the principal's operations."""
        return {} if self.owner is None else {"owner": self.owner}


LOCAL = Principal(owner=None)
