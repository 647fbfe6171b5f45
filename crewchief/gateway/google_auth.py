"""Bearer tokens for Vertex AI's OpenAI-compatible endpoint, from Application Default
Credentials (``GOOGLE_APPLICATION_CREDENTIALS``, ``gcloud auth application-default login``,
or the metadata server of the machine), refreshed when they expire.

``google-auth`` comes with the ``google`` extra; it is imported on the first Google call.
"""

from __future__ import annotations

import asyncio
from typing import Any

SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)


class GoogleToken:
    """The current access token of the Application Default Credentials.

    Credentials are found on first use and refreshed (in a thread: the refresh is a
    blocking HTTP call) when they are no longer valid; concurrent callers wait for one
    refresh.
    """

    def __init__(self) -> None:
        self._credentials: Any = None
        self._lock: asyncio.Lock | None = None

    async def __call__(self) -> str:
        credentials = self._credentials
        if credentials is not None and credentials.valid:
            return credentials.token
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            return await asyncio.to_thread(self._fresh_token)

    def _fresh_token(self) -> str:
        """Raises: RuntimeError naming what is missing or what Google said."""
        try:
            import google.auth
            import google.auth.exceptions
            from google.auth.transport.requests import Request
        except ImportError:
            raise RuntimeError("Google models need: pip install 'crewchief[google]'") from None
        try:
            if self._credentials is None:
                self._credentials, _ = google.auth.default(scopes=list(SCOPES))
            if not self._credentials.valid:
                self._credentials.refresh(Request())
        except google.auth.exceptions.GoogleAuthError as exc:
            raise RuntimeError(f"Google credentials: {exc}") from None
        return self._credentials.token


# One per process: every Google target shares the credentials.
GOOGLE_TOKEN = GoogleToken()
