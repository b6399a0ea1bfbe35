"""A TCP proxy between the handler and PostgreSQL that breaks connections at chosen moments.

It reads the client's side of the wire protocol message by message, so a test can
cut a connection right before a COMMIT reaches the server, right after the server
has committed but before the client hears of it (the ambiguous case), or in the
middle of a COPY. It can also refuse new connections, like a server that is down,
and stall: stop forwarding while every socket stays open, like a hung middlebox or a
network that silently drops packets (no FIN, no RST; this side's kernel keeps ACKing
until its buffers fill, so the client's sends block rather than fail).
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from typing import Literal

Trigger = Literal["before_commit", "after_commit", "mid_copy"]
StallPoint = Literal["now", "copy"]

_NEGOTIATION_CODES = {80877103, 80877104}  # SSLRequest, GSSENCRequest
_COMMIT = b"COMMIT\x00"


class FaultProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port = int(self._listener.getsockname()[1])
        self.dsn = f"postgresql://postgres@127.0.0.1:{self.port}/postgres?sslmode=disable"
        self._lock = threading.Lock()
        self._connections: list[tuple[socket.socket, socket.socket]] = []
        self._armed: list[Trigger] = []
        self._refusing = False
        self._flowing = threading.Event()  # cleared while stalled
        self._flowing.set()
        self._stall_at_copy = False
        #: How many stalls began (a stall at="copy" counts once it has begun), and when the
        #: last one did (time.monotonic()).
        self.stalls = 0
        self.stalled_since: float | None = None
        self.cuts: dict[str, int] = {"before_commit": 0, "after_commit": 0, "mid_copy": 0}
        self.accepted = 0
        self._closed = False
        threading.Thread(target=self._accept, name="faultproxy-accept", daemon=True).start()

    # -- what tests do -------------------------------------------------------------------------

    def arm(self, trigger: Trigger, times: int = 1) -> None:
        """Cut the connection the next ``times`` times ``trigger`` happens."""
        with self._lock:
            self._armed.extend([trigger] * times)

    def disarm(self) -> None:
        with self._lock:
            self._armed.clear()

    def refuse(self, refusing: bool = True) -> None:
        """While refusing, every new connection is closed at once (and existing ones cut)."""
        with self._lock:
            self._refusing = refusing
        if refusing:
            self.cut_all()

    def stall(self, at: StallPoint = "now") -> None:
        """Stop forwarding, in both directions, on every connection: bytes already read are
        held, the rest stays in the kernel's buffers, no socket is closed. New connections
        are accepted (and connected upstream) but nothing of theirs is forwarded either.

        ``at="copy"``: not now but when the next COPY data message comes from a client
        (that message is held too), so the stall catches a batch in the middle of its COPY.
        """
        with self._lock:
            if at == "copy":
                self._stall_at_copy = True
                return
            self._stall_at_copy = False
            self.stalls += 1
            self.stalled_since = time.monotonic()
        self._flowing.clear()

    def resume(self, cut_stalled: bool = False) -> None:
        """Forward again: held bytes go on first, as after a network blip. With
        ``cut_stalled``, the connections that were open during the stall are cut instead
        (the middlebox forgot them) and only new ones work."""
        with self._lock:
            self._stall_at_copy = False
        if cut_stalled:
            self.cut_all()
        self._flowing.set()

    @property
    def stalled(self) -> bool:
        return not self._flowing.is_set()

    def cut_all(self) -> None:
        with self._lock:
            connections, self._connections = self._connections, []
        for pair in connections:
            _close(*pair)

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        self.cut_all()
        self._flowing.set()  # stalled threads wake, find their sockets closed, and end

    # -- plumbing --------------------------------------------------------------------------------

    def _gate(self) -> None:
        """Wait here while stalled (each forwarding thread, before it reads and before it
        sends)."""
        while not self._flowing.wait(1.0):
            if self._closed:
                return

    def _recv(self, sock: socket.socket, count: int) -> bytes:
        self._gate()
        return sock.recv(count)

    def _send(self, sock: socket.socket, data: bytes) -> None:
        self._gate()
        sock.sendall(data)

    def _read_exactly(self, sock: socket.socket, count: int) -> bytes:
        data = b""
        while len(data) < count:
            chunk = self._recv(sock, count - len(data))
            if not chunk:
                raise OSError("connection closed")
            data += chunk
        return data

    def _take(self, trigger: Trigger) -> bool:
        with self._lock:
            if trigger in self._armed:
                self._armed.remove(trigger)
                self.cuts[trigger] += 1
                return True
            return False

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                refusing = self._refusing
            if refusing:
                client.close()
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=10)
                server.settimeout(None)
                for end in (client, server):  # like libpq: no Nagle delay on small messages
                    end.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                client.close()
                continue
            with self._lock:
                refusing = self._refusing  # refuse() may have come while we connected
                if not refusing:
                    self._connections.append((client, server))
                    self.accepted += 1
            if refusing:
                _close(client, server)
                continue
            hold = threading.Event()
            threading.Thread(
                target=self._client_to_server, args=(client, server, hold), daemon=True
            ).start()
            threading.Thread(
                target=self._server_to_client, args=(client, server, hold), daemon=True
            ).start()

    def _client_to_server(
        self, client: socket.socket, server: socket.socket, hold: threading.Event
    ) -> None:
        try:
            while True:  # startup, possibly after SSL/GSS negotiation requests
                header = self._read_exactly(client, 8)
                length, code = struct.unpack("!ii", header)
                self._send(server, header + self._read_exactly(client, length - 8))
                if code not in _NEGOTIATION_CODES:
                    break
            while True:
                kind = self._read_exactly(client, 1)
                length_bytes = self._read_exactly(client, 4)
                (length,) = struct.unpack("!i", length_bytes)
                body = self._read_exactly(client, length - 4)
                message = kind + length_bytes + body
                if kind == b"Q" and body == _COMMIT:
                    if self._take("before_commit"):
                        break
                    if self._take("after_commit"):
                        hold.set()  # the reply must not reach the client
                elif kind == b"d" and self._take("mid_copy"):
                    self._send(server, message[: len(message) // 2])
                    break
                elif kind == b"d" and self._stall_at_copy:
                    self.stall()
                self._send(server, message)
        except OSError:
            pass
        if not hold.is_set():
            _close(client, server)

    def _server_to_client(
        self, client: socket.socket, server: socket.socket, hold: threading.Event
    ) -> None:
        held = b""
        try:
            while True:
                data = self._recv(server, 65536)
                if not data:
                    break
                if hold.is_set():
                    held += data
                    if b"C\x00\x00\x00\x0b" + _COMMIT in held:  # CommandComplete "COMMIT"
                        break  # the server has committed; the client will never know
                    continue
                self._send(client, data)
        except OSError:
            pass
        _close(client, server)


def _close(*sockets: socket.socket) -> None:
    for sock in sockets:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()
