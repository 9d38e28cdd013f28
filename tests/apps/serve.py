"""Serve sample apps with uvicorn, each on a free loopback port of its own::

    python -m tests.apps.serve http://127.0.0.1:8000 content_app events_app

The first argument is the apps' upstream (the mock). For each app it prints ``serving
<app> on http://127.0.0.1:<port>`` once its socket listens, then serves them all on one
event loop until terminated. An app that blocks its event loop needs a process alone.
"""

from __future__ import annotations

import asyncio
import importlib
import socket
import sys

import uvicorn


def _listen() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


async def serve(upstream: str, names: list[str]) -> None:
    servers = []
    for name in names:
        app = importlib.import_module(f"tests.apps.{name}").create_app(upstream)
        sock = _listen()
        config = uvicorn.Config(app, log_level="warning", access_log=False)
        servers.append(uvicorn.Server(config).serve(sockets=[sock]))
        print(f"serving {name} on http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    await asyncio.gather(*servers)


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1], sys.argv[2:]))
