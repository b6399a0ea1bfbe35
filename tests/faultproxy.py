"""A TCP proxy between the handler and PostgreSQL that breaks connections at chosen moments.

It reads the client's side of the wire protocol message by message, so a test can
cut a connection right before a COMMIT reaches the server, right after the server
has committed but before the client hears of it (the ambiguous case), or in the
middle of a COPY. It can also refuse new connections, like a server that is down.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from typing import Literal

Trigger = Literal["before_commit", "after_commit", "mid_copy"]

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

    def cut_all(self) -> None:
        with self._lock:
            connections, self._connections = self._connections, []
        for pair in connections:
            _close(*pair)

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        self.cut_all()

    # -- plumbing --------------------------------------------------------------------------------

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
                header = _read_exactly(client, 8)
                length, code = struct.unpack("!ii", header)
                server.sendall(header + _read_exactly(client, length - 8))
                if code not in _NEGOTIATION_CODES:
                    break
            while True:
                kind = _read_exactly(client, 1)
                length_bytes = _read_exactly(client, 4)
                (length,) = struct.unpack("!i", length_bytes)
                body = _read_exactly(client, length - 4)
                message = kind + length_bytes + body
                if kind == b"Q" and body == _COMMIT:
                    if self._take("before_commit"):
                        break
                    if self._take("after_commit"):
                        hold.set()  # the reply must not reach the client
                elif kind == b"d" and self._take("mid_copy"):
                    server.sendall(message[: len(message) // 2])
                    break
                server.sendall(message)
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
                data = server.recv(65536)
                if not data:
                    break
                if hold.is_set():
                    held += data
                    if b"C\x00\x00\x00\x0b" + _COMMIT in held:  # CommandComplete "COMMIT"
                        break  # the server has committed; the client will never know
                    continue
                client.sendall(data)
        except OSError:
            pass
        _close(client, server)


def _read_exactly(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise OSError("connection closed")
        data += chunk
    return data


def _close(*sockets: socket.socket) -> None:
    for sock in sockets:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()
