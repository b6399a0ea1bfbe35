"""A TCP proxy for Citus' connections to a worker that can hold the worker's replies after a
chosen command (PREPARE TRANSACTION, COMMIT PREPARED), to freeze 2PC at a chosen step."""
from __future__ import annotations
import socket, struct, threading, re

class HoldProxy:
    def __init__(self, upstream_port: int):
        self.upstream = ("127.0.0.1", upstream_port)
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.pattern: re.Pattern | None = None
        self.held: list[tuple[socket.socket, socket.socket, threading.Event, list]] = []
        self.seen: list[str] = []
        self.conns = []
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def hold_after(self, pattern: str | None):
        with self.lock:
            self.pattern = re.compile(pattern) if pattern else None
            self.before = False

    def hold_before(self, pattern: str):
        """Don't forward the matching command until release() (cut_held() drops it)."""
        with self.lock:
            self.pattern = re.compile(pattern)
            self.before = True

    def release(self):
        with self.lock:
            held, self.held = self.held, []
        for _, _, ev, _ in held:
            ev.set()

    def cut_held(self):
        with self.lock:
            held, self.held = self.held, []
        for c, u, ev, _ in held:
            for s in (c, u):
                try: s.shutdown(socket.SHUT_RDWR)
                except OSError: pass
                s.close()
            ev.set()

    def cut_all(self):
        for c, u in list(self.conns):
            for s in (c, u):
                try: s.shutdown(socket.SHUT_RDWR)
                except OSError: pass
                s.close()
        self.conns.clear()

    def close(self):
        self.closed = True
        self.listener.close()
        self.release(); self.cut_all()

    def _accept(self):
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                up = socket.create_connection(self.upstream)
            except OSError:
                client.close(); continue
            self.conns.append((client, up))
            gate = {"ev": None}
            threading.Thread(target=self._c2s, args=(client, up, gate), daemon=True).start()
            threading.Thread(target=self._s2c, args=(client, up, gate), daemon=True).start()

    def _c2s(self, client, up, gate):
        try:
            buf = b""
            started = False
            while True:
                data = client.recv(65536)
                if not data:
                    break
                buf += data
                out = b""
                while True:
                    if not started:
                        if len(buf) < 8: break
                        n = struct.unpack("!I", buf[:4])[0]
                        if len(buf) < n: break
                        code = struct.unpack("!I", buf[4:8])[0]
                        out += buf[:n]; buf = buf[n:]
                        if code == 80877103:  # SSLRequest: answer for the server? forward; server says 'S'/'N'
                            continue
                        started = True
                        continue
                    if len(buf) < 5: break
                    n = struct.unpack("!I", buf[1:5])[0]
                    if len(buf) < n + 1: break
                    msg = buf[: n + 1]; buf = buf[n + 1:]
                    if msg[:1] == b"Q":
                        text = msg[5:-1].decode(errors="replace")
                        self.seen.append(text[:80])
                        with self.lock:
                            pat = self.pattern
                            hold_here = None
                            if pat and pat.search(text):
                                ev = threading.Event()
                                if self.before:
                                    hold_here = ev
                                else:
                                    gate["ev"] = ev
                                self.held.append((client, up, ev, [text]))
                                self.pattern = None  # one shot
                        if hold_here is not None:
                            if out:
                                up.sendall(out); out = b""
                            hold_here.wait()
                    out += msg
                if out:
                    up.sendall(out)
        except OSError:
            pass
        finally:
            for s in (client, up):
                try: s.close()
                except OSError: pass

    def _s2c(self, client, up, gate):
        try:
            while True:
                data = up.recv(65536)
                if not data:
                    break
                ev = gate["ev"]
                if ev is not None:
                    ev.wait()
                    gate["ev"] = None
                client.sendall(data)
        except OSError:
            pass
        finally:
            for s in (client, up):
                try: s.close()
                except OSError: pass
