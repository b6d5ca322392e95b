"""A Graph transport wrapper for `Overrides(graph_transport=...)` that remembers each request."""

from __future__ import annotations

import httpx


class Recording(httpx.AsyncBaseTransport):
    """Passes every Graph request on, remembering its URL."""

    def __init__(self, inner: httpx.AsyncBaseTransport | None) -> None:
        assert inner is not None, "in emulator mode the wrapper gets the emulator's transport"
        self.inner = inner
        self.urls: list[httpx.URL] = []

    @property
    def paths(self) -> list[str]:
        return [url.path for url in self.urls]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.urls.append(request.url)
        return await self.inner.handle_async_request(request)
