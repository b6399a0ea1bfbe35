"""Spool: a durable local overflow for records the database can't take yet, replayed oldest first.

When the database is away longer than memory lasts, the writer appends captured
entries to segment files in ``spool_dir`` (one JSON array per line, fsync'd per
write) instead of dropping them, and replays the segments, oldest first, before
anything newer once the database is back. A process that exits or dies with a spool
leaves it to the next one that opens the directory for the same table.

Exactly once, across crashes: before the COMMIT of a replayed batch the segment's
progress file records the transaction id and how far the batch reaches (fsync'd);
after the COMMIT it records the new position. A process that finds a transaction id
still recorded asks the server what became of it before replaying anything. A batch
whose COMMIT's fate was still unknown when its process closed is spooled with its
transaction id recorded in the same way.

Files in ``spool_dir``:

- ``owner-<token>.lock``: held (``flock``) by the live process that writes ``<token>``
  segments. Segments whose owner lock can be taken belong to a process that is gone;
  whoever takes the lock replays them.
- ``<key>-<started>-<token>-<first>.rows``: entries, one JSON line each, numbered
  from ``first`` in the order they were queued. ``key`` names the destination (server
  and table), so handlers of different tables can share a directory; ``started`` and
  ``first`` order segments without trusting the clock twice.
- ``<same>.done``: replay progress: ``{"done": lines, "pending": [xid, through]}``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from pglog._capture.entry import Captured, Entry

#: A segment is sealed (no more appends) when it grows past this size.
SEGMENT_BYTES = 8 << 20
#: How often to look for segments that processes which have since died left behind.
ORPHAN_SCAN_INTERVAL = 30.0


class SpoolFull(Exception):
    """Appending would take the spool past its size limit."""


@dataclass
class SpoolBatch:
    """Entries read back from one segment."""

    segment: Path
    #: The sequence number of the first entry (meaningful for this process's own).
    first: int
    entries: list[Entry]
    own: bool
    #: A transaction recorded before a COMMIT whose outcome was never recorded:
    #: (xid, how many of ``entries`` it covers).
    pending: tuple[str, int] | None


@dataclass
class _Replay:
    segment: Path
    first: int
    entries: list[Entry]
    done: int
    pending: tuple[str, int] | None  # (xid, line it covers through)
    own: bool


@dataclass(frozen=True)
class _Name:
    key: str
    started: int
    token: str
    first: int

    @classmethod
    def parse(cls, path: Path) -> _Name | None:
        parts = path.stem.split("-")
        if len(parts) != 4 or not (parts[1].isdigit() and parts[3].isdigit()):
            return None
        return cls(parts[0], int(parts[1]), parts[2], int(parts[3]))


class Spool:
    """The spool of one process for one destination. Used only from its writer thread."""

    def __init__(self, directory: str | os.PathLike[str], max_bytes: int, destination: str) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.key = hashlib.blake2b(destination.encode(), digest_size=6).hexdigest()
        self.token = f"{os.getpid()}x{secrets.token_hex(4)}"
        self.corrupt = 0
        self._started = time.time_ns()
        self._owner: IO[bytes] | None = None
        self._foreign: dict[str, IO[bytes]] = {}
        self._active: tuple[Path, IO[bytes], int] | None = None  # path, file, next number
        self._replaying: _Replay | None = None
        self._own_unreplayed = 0
        self._next_orphan_scan = 0.0

    # -- lifecycle -------------------------------------------------------------------------

    def open(self) -> None:
        """Create the directory and take this process's owner lock."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        owner = (self.directory / f"owner-{self.token}.lock").open("wb")
        fcntl.flock(owner, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._owner = owner

    def close(self) -> None:
        """Release the locks; leave the segments for the next process."""
        self._seal()
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
        """Bytes of segments for this destination, every process's."""
        total = 0
        for path in self.directory.glob(f"{self.key}-*.rows"):
            with contextlib.suppress(OSError):
                total += path.stat().st_size
        return total

    # -- writing ----------------------------------------------------------------------------

    def append(
        self, entries: list[Captured], first: int, pending: tuple[str, int] | None = None
    ) -> None:
        """Write ``entries``, numbered from ``first``, durably (fsync). With ``pending``
        (xid, count), a transaction that may have committed the first ``count`` is
        recorded, to be looked up on replay. On failure nothing of it stays."""
        data = b"".join(
            json.dumps(entry, separators=(",", ":")).encode() + b"\n" for entry in entries
        )
        if self.size + len(data) > self.max_bytes:
            raise SpoolFull(f"{self.directory} holds its limit of {self.max_bytes} bytes")
        if pending is not None or self._active is None or self._active[2] != first:
            self._seal()  # a new segment for a new run of numbers
        path, handle = self._segment(first)
        descriptor = handle.fileno()
        before = os.fstat(descriptor).st_size
        try:
            _write_all(descriptor, data)
            os.fsync(descriptor)
        except BaseException:
            with contextlib.suppress(OSError):
                os.ftruncate(descriptor, before)
            self._seal()
            raise
        if pending is not None:
            _write_progress(path, 0, pending, sync=True)
        self._own_unreplayed += len(entries)
        self._active = (path, handle, first + len(entries))
        if before + len(data) >= SEGMENT_BYTES or pending is not None:
            self._seal()

    def _segment(self, first: int) -> tuple[Path, IO[bytes]]:
        if self._active is None:
            path = (
                self.directory / f"{self.key}-{self._started:020d}-{self.token}-{first:012d}.rows"
            )
            handle = path.open("ab", buffering=0)  # no buffer to flush after a failed write
            _sync_directory(self.directory)
            self._active = (path, handle, first)
        return self._active[0], self._active[1]

    def _seal(self) -> None:
        if self._active is not None:
            self._active[1].close()
            self._active = None

    # -- replaying --------------------------------------------------------------------------

    def has_backlog(self) -> bool:
        """Is anything waiting to be replayed (this process's, or a dead one's)?"""
        if self._own_unreplayed > 0 or self._replaying is not None:
            return True
        now = time.monotonic()
        if now < self._next_orphan_scan:
            return False
        self._next_orphan_scan = now + ORPHAN_SCAN_INTERVAL
        return self._oldest_claimable() is not None

    def claim(self, limit: int) -> SpoolBatch | None:
        """The next up to ``limit`` entries to replay, oldest first (with a recorded
        transaction pending: all the entries it covers)."""
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
            pending = None
            count = limit
            if replay.pending is not None:
                covered = max(0, replay.pending[1] - replay.done)
                pending, count = (replay.pending[0], covered), max(limit, covered)
            entries = replay.entries[replay.done : replay.done + count]
            first = replay.first + replay.done
            return SpoolBatch(replay.segment, first, entries, replay.own, pending)

    def prepare_commit(self, batch: SpoolBatch, count: int, xid: str) -> None:
        """Record, durably, that transaction ``xid`` is about to commit ``count`` entries."""
        replay = self._current(batch)
        _write_progress(replay.segment, replay.done, (xid, replay.done + count), sync=True)

    def advance(self, batch: SpoolBatch, count: int) -> None:
        """The next ``count`` entries of the batch are settled (written, or handed on)."""
        replay = self._current(batch)
        replay.done += count
        replay.pending = None
        if replay.own:
            self._own_unreplayed = max(0, self._own_unreplayed - count)
        _write_progress(replay.segment, replay.done, None, sync=True)

    def resolve(self, batch: SpoolBatch, committed: bool) -> None:
        """What became of the recorded transaction is known: skip its entries if it committed."""
        replay = self._current(batch)
        assert replay.pending is not None
        if committed:
            self.advance(batch, replay.pending[1] - replay.done)
        else:
            replay.pending = None
            _write_progress(replay.segment, replay.done, None, sync=True)

    def _current(self, batch: SpoolBatch) -> _Replay:
        replay = self._replaying
        assert replay is not None
        assert replay.segment == batch.segment
        return replay

    def _oldest_claimable(self) -> Path | None:
        for segment in sorted(self.directory.glob(f"{self.key}-*.rows")):
            name = _Name.parse(segment)
            if name is None:
                continue
            if name.token == self.token or name.token in self._foreign:
                return segment
            if self._lock_orphan(name.token) and segment.exists():
                return segment
        return None

    def _lock_orphan(self, token: str) -> bool:
        """Take the owner lock of ``token``'s segments if its process is gone."""
        try:
            descriptor = os.open(self.directory / f"owner-{token}.lock", os.O_RDWR)
        except FileNotFoundError:  # a finished orphan's lock, removed: nothing left to take
            return False
        handle = os.fdopen(descriptor, "rb+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._foreign[token] = handle
        return True

    def _read(self, segment: Path) -> _Replay:
        name = _Name.parse(segment)
        assert name is not None
        own = name.token == self.token
        if own and self._active is not None and self._active[0] == segment:
            self._seal()
        entries: list[Entry] = []
        try:
            with segment.open("rb") as handle:
                for line in handle:
                    entry = _parse(line)
                    if entry is None:  # torn by a crash mid-append: never acknowledged
                        self.corrupt += 1
                    else:
                        entries.append(entry)
        except FileNotFoundError:  # another process finished it first
            pass
        progress = _read_progress(segment)
        pending = progress.get("pending")
        return _Replay(
            segment,
            name.first,
            entries,
            int(progress.get("done", 0)),
            (str(pending[0]), int(pending[1])) if pending else None,
            own,
        )

    def _finish(self, replay: _Replay) -> None:
        """Every entry of the segment is settled: delete it."""
        replay.segment.unlink(missing_ok=True)
        replay.segment.with_suffix(".done").unlink(missing_ok=True)
        self._replaying = None
        name = _Name.parse(replay.segment)
        token = name.token if name else ""
        if token in self._foreign and not any(self.directory.glob(f"*-{token}-*.rows")):
            self._foreign.pop(token).close()
            (self.directory / f"owner-{token}.lock").unlink(missing_ok=True)


def _parse(line: bytes) -> Entry | None:
    try:
        values = json.loads(line)
    except ValueError:
        return None
    if not isinstance(values, list) or len(values) != len(Entry._fields):
        return None
    entry = Entry._make(values)
    return entry._replace(args=tuple(entry.args)) if isinstance(entry.args, list) else entry


def _write_progress(
    segment: Path, done: int, pending: tuple[str, int] | None, *, sync: bool
) -> None:
    target = segment.with_suffix(".done")
    temporary = segment.with_suffix(".done.tmp")
    with temporary.open("w") as handle:
        json.dump({"done": done, "pending": pending}, handle)
        if sync:
            handle.flush()
            os.fsync(handle.fileno())
    os.replace(temporary, target)
    if sync:
        _sync_directory(segment.parent)


def _read_progress(segment: Path) -> dict[str, Any]:
    try:
        progress = json.loads(segment.with_suffix(".done").read_text())
    except (OSError, ValueError):
        return {}
    return progress if isinstance(progress, dict) else {}


def _sync_directory(directory: Path) -> None:
    """Make a new or renamed file's name durable, not just its contents."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _write_all(descriptor: int, data: bytes) -> None:
    """Write all of ``data``, or raise: a short write (a disk filling up, a file size
    limit) is carried on from where it stopped, until it fails outright."""
    view = memoryview(data)
    while view:
        view = view[os.write(descriptor, view) :]
