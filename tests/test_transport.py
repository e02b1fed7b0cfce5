"""linkup_server/transport.py: the kernel lets go of a peer that stops reading, on real
sockets (the fault suite shows it under a live server, tests/faults/)."""

from __future__ import annotations

import asyncio
import socket

import pytest

from linkup_server.transport import limit_unacknowledged

# What it tests does not depend on the database or the channel layer.
pytestmark = pytest.mark.embedded_only


def test_a_peer_that_never_reads_is_let_go() -> None:
    async def scenario() -> tuple[int, BaseException | None]:
        lost: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()
        option = []

        class Flood(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                assert limit_unacknowledged(transport, 1.0)
                sock = transport.get_extra_info("socket")
                option.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT))
                for _ in range(200):  # 12.8 MB, far more than both buffers hold
                    transport.write(b"x" * 65536)  # type: ignore[attr-defined]

            def connection_lost(self, exc: BaseException | None) -> None:
                lost.set_result(exc)

        listener = await asyncio.get_running_loop().create_server(Flood, "127.0.0.1", 0)
        port = listener.sockets[0].getsockname()[1]
        peer = socket.create_connection(("127.0.0.1", port))  # connected, never read
        try:
            exc = await asyncio.wait_for(lost, 30)
        finally:
            peer.close()
            listener.close()
        return option[0], exc

    option, exc = asyncio.run(scenario())
    assert option == 1000
    # The kernel aborted it (the peer is still there, its window shut): ETIMEDOUT.
    assert isinstance(exc, OSError), exc


def test_sockets_that_are_not_tcp_are_left_alone() -> None:
    class Transport(asyncio.BaseTransport):
        def __init__(self, sock: socket.socket | None) -> None:
            super().__init__()
            self.sock = sock

        def get_extra_info(self, name: str, default: object = None) -> object:
            return self.sock if name == "socket" else default

    left, right = socket.socketpair()
    try:
        assert not limit_unacknowledged(Transport(left), 1.0)
        assert not limit_unacknowledged(Transport(None), 1.0)
    finally:
        left.close()
        right.close()
    with socket.socket() as tcp:
        assert not limit_unacknowledged(Transport(tcp), 0)  # 0: off
        assert limit_unacknowledged(Transport(tcp), 2.5)
        assert tcp.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 2500
