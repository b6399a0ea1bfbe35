"""Spool: a durable local overflow for records the database can't take yet, replayed oldest first.

When the database is away longer than memory lasts, the writer appends captured
entries to segment files in ``spool_dir`` (one JSON array per line, fsync'd per
batch) instead of dropping them, and replays the segments, oldest first, before
anything newer once the database is back. A process that exits or dies with a spool
leaves it to the next one that opens the directory.

Exactly once, across crashes: before the COMMIT of a replayed batch the segment's
progress file records the transaction id and how far the batch reaches (fsync'd);
after the COMMIT it records the new position. A process that finds a transaction id
still recorded asks the server what became of it before replaying anything.

Files in ``spool_dir``:

- ``owner-<token>.lock``: held (``flock``) by the live process that writes ``<token>``
  segments. A segment whose owner lock can be taken belongs to a process that is gone,
  and whoever takes the lock replays it.
- ``<ns>-<token>.rows``: entries, one JSON line each, in the order they were queued.
- ``<ns>-<token>.done``: replay progress: ``{"done": lines, "pending": [xid, through]}``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from pglog.record import Entry

#: A segment is sealed (no more appends) when it grows past this size.
SEGMENT_BYTES = 8 << 20
#: How often to look for segments that processes which have since died left behind.
ORPHAN_SCAN_INTERVAL = 30.0


class SpoolFull(Exception):
    """Appending would take the spool past its size limit."""


@dataclass
class SpoolBatch:
    """Entries read back from one segment, starting at line ``first``."""

    segment: Path
    first: int
    entries: list[Entry]
    own: bool
    #: A transaction recorded before a COMMIT whose outcome was never recorded: (xid, through).
    pending: tuple[str, int] | None


@dataclass
class _Replay:
    segment: Path
    entries: list[Entry]
    done: int
    pending: tuple[str, int] | None
    own: bool


class Spool:
    """The spool of one process. Used only from its writer thread."""

    def __init__(self, directory: str | os.PathLike[str], max_bytes: int) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.token = f"{os.getpid()}x{secrets.token_hex(4)}"
        self.corrupt_lines = 0
        self._owner: IO[bytes] | None = None
        self._foreign: dict[str, IO[bytes]] = {}
        self._active: tuple[Path, IO[bytes]] | None = None
        self._replaying: _Replay | None = None
        self._own_unreplayed = 0
        self._size = 0
        self._next_orphan_scan = 0.0

    # -- lifecycle -------------------------------------------------------------------------

    def open(self) -> None:
        """Create the directory, take this process's owner lock, measure what is there."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        owner = (self.directory / f"owner-{self.token}.lock").open("wb")
        fcntl.flock(owner, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._owner = owner
        self._size = sum(p.stat().st_size for p in self.directory.glob("*.rows"))

    def close(self) -> None:
        """Release the locks; leave the segments for the next process."""
        if self._active is not None:
            self._active[1].close()
            self._active = None
        for handle in self._foreign.values():
            handle.close()
        self._foreign.clear()
        if self._owner is not None:
            if not self._own_unreplayed:
                with contextlib.suppress(OSError):
                    (self.directory / f"owner-{self.token}.lock").unlink()
            self._owner.close()
            self._owner = None

    def abandon(self) -> None:
        """In a forked child: drop the inherited files without releasing the parent's locks
        (a lock belongs to the open file, which the parent still has)."""
        handles = [*self._foreign.values(), *([self._owner] if self._owner else [])]
        if self._active is not None:
            handles.append(self._active[1])
        for handle in handles:
            with contextlib.suppress(OSError):
                os.close(handle.fileno())
        self._owner, self._active, self._foreign = None, None, {}

    @property
    def size(self) -> int:
        return self._size

    # -- writing ----------------------------------------------------------------------------

    def append(self, entries: list[Entry]) -> None:
        """Write ``entries`` durably (fsync) after everything spooled before."""
        data = b"".join(
            json.dumps(entry, separators=(",", ":")).encode() + b"\n" for entry in entries
        )
        if self._size + len(data) > self.max_bytes:
            raise SpoolFull(f"{self.directory} holds {self._size} of {self.max_bytes} bytes")
        handle = self._segment_for_append()
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
        self._size += len(data)
        self._own_unreplayed += len(entries)
        if handle.tell() >= SEGMENT_BYTES:
            self._seal()

    def _segment_for_append(self) -> IO[bytes]:
        if self._active is None:
            path = self.directory / f"{time.time_ns():020d}-{self.token}.rows"
            self._active = (path, path.open("ab"))
        return self._active[1]

    def _seal(self) -> None:
        if self._active is not None:
            self._active[1].close()
            self._active = None

    # -- replaying --------------------------------------------------------------------------

    def has_backlog(self) -> bool:
        """Is anything waiting to be replayed (this process's, or a dead one's)?"""
        if self._own_unreplayed or self._replaying is not None:
            return True
        now = time.monotonic()
        if now < self._next_orphan_scan:
            return False
        self._next_orphan_scan = now + ORPHAN_SCAN_INTERVAL
        return self._oldest_claimable() is not None

    def claim(self, limit: int) -> SpoolBatch | None:
        """The next up to ``limit`` entries to replay, oldest first."""
        while True:
            replay = self._replaying
            if replay is None:
                segment = self._oldest_claimable()
                if segment is None:
                    return None
                replay = self._replaying = self._read(segment)
            if replay.pending is None and replay.done >= len(replay.entries):
                self._finish(replay)
                continue
            entries = replay.entries[replay.done : replay.done + limit]
            return SpoolBatch(replay.segment, replay.done, entries, replay.own, replay.pending)

    def prepare_commit(self, batch: SpoolBatch, count: int, xid: str) -> None:
        """Record, durably, that transaction ``xid`` is about to commit ``count`` entries."""
        replay = self._current(batch)
        self._write_progress(replay.segment, replay.done, (xid, replay.done + count), sync=True)

    def advance(self, batch: SpoolBatch, count: int) -> None:
        """The next ``count`` entries of the batch are settled (written, or handed on)."""
        replay = self._current(batch)
        replay.done += count
        replay.pending = None
        if replay.own:
            self._own_unreplayed -= count
        self._write_progress(replay.segment, replay.done, None, sync=False)

    def resolve(self, batch: SpoolBatch, committed: bool) -> None:
        """What became of the recorded transaction is known: skip its entries if it committed."""
        replay = self._current(batch)
        assert replay.pending is not None
        if committed:
            replay.done = replay.pending[1]
        replay.pending = None
        self._write_progress(replay.segment, replay.done, None, sync=True)

    def _current(self, batch: SpoolBatch) -> _Replay:
        replay = self._replaying
        assert replay is not None
        assert replay.segment == batch.segment
        return replay

    def _oldest_claimable(self) -> Path | None:
        for segment in sorted(self.directory.glob("*.rows")):
            token = segment.stem.split("-", 1)[1]
            if token == self.token or token in self._foreign or self._lock_orphan(token):
                return segment
        return None

    def _lock_orphan(self, token: str) -> bool:
        """Take the owner lock of ``token``'s segments if its process is gone."""
        handle = (self.directory / f"owner-{token}.lock").open("ab")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._foreign[token] = handle
        return True

    def _read(self, segment: Path) -> _Replay:
        own = segment.stem.endswith(self.token)
        if own and self._active is not None and self._active[0] == segment:
            self._seal()
        entries: list[Entry] = []
        with segment.open("rb") as handle:
            for line in handle:
                try:
                    entries.append(tuple(json.loads(line)))
                except ValueError:  # a line torn by a crash mid-append: never acknowledged
                    self.corrupt_lines += 1
        progress = _read_progress(segment)
        pending = progress.get("pending")
        return _Replay(
            segment,
            entries,
            int(progress.get("done", 0)),
            (str(pending[0]), int(pending[1])) if pending else None,
            own,
        )

    def _finish(self, replay: _Replay) -> None:
        """Every entry of the segment is settled: delete it."""
        size = replay.segment.stat().st_size
        replay.segment.unlink()
        replay.segment.with_suffix(".done").unlink(missing_ok=True)
        self._size -= size
        self._replaying = None
        token = replay.segment.stem.split("-", 1)[1]
        if token in self._foreign and not any(self.directory.glob(f"*-{token}.rows")):
            self._foreign.pop(token).close()
            (self.directory / f"owner-{token}.lock").unlink(missing_ok=True)

    def _write_progress(
        self, segment: Path, done: int, pending: tuple[str, int] | None, *, sync: bool
    ) -> None:
        target = segment.with_suffix(".done")
        temporary = segment.with_suffix(".done.tmp")
        with temporary.open("w") as handle:
            json.dump({"done": done, "pending": pending}, handle)
            if sync:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(temporary, target)


def _read_progress(segment: Path) -> dict[str, Any]:
    try:
        progress = json.loads(segment.with_suffix(".done").read_text())
    except (OSError, ValueError):
        return {}
    return progress if isinstance(progress, dict) else {}
