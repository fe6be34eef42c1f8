"""uvicorn's h11 protocol with ``TCP_NODELAY`` on every accepted connection, whatever the listening socket.

Why: with ``--workers N`` uvicorn binds the listening socket itself with ``proto`` 0, accepted sockets inherit it,
and asyncio enables ``TCP_NODELAY`` only where ``proto == IPPROTO_TCP``. Nagle's algorithm then holds a response's
second segment until the client's delayed ACK: every keep-alive request past the first took about 44 ms here, for
a 1 ms answer (uvicorn issue #3149, open in 0.54). Loaded by uvicorn through its import string, in every worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

from uvicorn.protocols.http.h11_impl import H11Protocol

IMPORT_STRING = "bench.leaderboard.nodelay:NoDelayH11Protocol"


class NoDelayH11Protocol(H11Protocol):
    """H11Protocol that turns Nagle's algorithm off before serving a connection."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):  # a socket that refuses the option still serves, only slower
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)
