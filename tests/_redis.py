"""A Redis that is down, silent or confused, for the outage tests of every Redis backend."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

# Port 1 on loopback refuses at once; the password must never show up in an error.
REFUSING_URL = "redis://:hunter2-secret@127.0.0.1:1/0"


@asynccontextmanager
async def fake_redis(reply: bytes | None) -> AsyncIterator[str]:
    """A TCP server that accepts and then says `reply` (or nothing at all); yields its URL."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)
        if reply is not None:
            writer.write(reply)
            await writer.drain()
        try:
            await reader.read()  # hold the connection open until the client gives up
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.close()
        await server.wait_closed()
