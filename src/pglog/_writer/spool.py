"""Spool: a durable local overflow for records the database can't take yet, replayed oldest first.

When memory runs low while the database is away (or stuck), the spiller appends
captured entries to segment files in ``spool_dir`` (see ``segments``), fsync'd per
write, and the writer replays the segments, oldest first, before anything newer once the
database takes rows again. A process that exits or dies with a spool leaves it to the
next one writing to the same destination (see ``owners``).

Exactly once, across crashes: before the COMMIT of a replayed batch the segment's
progress file records the transaction id and how far the batch reaches; after the COMMIT
it records the new position. A process that finds a transaction still recorded asks the
server what became of it before replaying anything. A batch whose COMMIT's fate was
still unknown when its process closed is spooled with its transaction recorded in the
same way.

A spool belongs to a destination, not to a spelling of the DSN: the next process
writing to that table replays a segment whose server is its own, or, where either side
never learnt the server's identity, whose addresses, port and database match its own.
Segments going elsewhere are left alone, and said so (``new_strangers``).

The disk is not trusted either. Every failure (full, failing, read-only, files or the
whole directory removed) is a SpoolError: the caller rests the spool and tries again
later; nothing is ever rejected because of it. Records in segment files that vanish are
reported back (``take_lost``), to be counted as lost, never left pending.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pglog._capture.entry import Captured, Entry
from pglog._writer.holdings import Holdings
from pglog._writer.ledger import Run
from pglog._writer.owners import Owners
from pglog._writer.segments import (
    Destination,
    Recorded,
    SegmentFile,
    SegmentName,
    SpoolError,
    bytes_of,
    disk,
    key_for,
    line,
    read_progress,
    read_segment,
    segments_in,
    tokens_in,
    write_progress,
)

#: A segment is sealed (no more appends) when it grows past this size.
SEGMENT_BYTES = 8 << 20
#: How often to look for segments that processes which have since died left behind.
ORPHAN_SCAN_INTERVAL = 30.0


@dataclass
class SpoolBatch:
    """Entries read back from one segment."""

    segment: Path
    #: The sequence number of the first entry (meaningful for this process's own).
    first: int
    entries: list[Entry]
    own: bool
    pending: Recorded | None


@dataclass
class _Segment:
    """A segment being replayed: its entries, and how far replay has got."""

    path: Path
    first: int
    entries: list[Entry]
    done: int
    #: The recorded transaction, with ``count`` the line it covers through.
    pending: Recorded | None
    own: bool


class Spool:
    """The spool of one process for one destination; used by its spiller, its writer
    and close(), one at a time."""

    def __init__(
        self, directory: str | os.PathLike[str], max_bytes: int, destination: Destination
    ) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.destination = destination
        self.token = f"{os.getpid()}x{secrets.token_hex(4)}"
        #: Torn lines found (a crash mid-append): never acknowledged, so never counted.
        self.corrupt = 0
        self.key = key_for(destination.table)
        self._owners = Owners(self.directory, self.token)
        self._lock = threading.RLock()
        self._started = time.time_ns()
        self._active: SegmentFile | None = None
        self._replaying: _Segment | None = None
        self._holdings = Holdings()
        self._next_orphan_scan = 0.0
        self._strangers: set[Path] = set()
        self._said_strangers: set[Path] = set()
        self._size = 0

    # -- lifecycle ------------------------------------------------------------------------------

    def open(self) -> None:
        """Create the directory and hold this process's owner lock (again, if the
        directory was removed since)."""
        with self._lock, disk("open the spool"):
            fresh = not self.directory.is_dir()
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._owners.hold()
            if fresh or not self._size:
                self._size = bytes_of(self.directory, self.key)

    def identify(self, server: str | None) -> None:
        """The writer connected and learnt its server's identity: later segments say so,
        and segments of that server are recognised whatever DSN wrote them."""
        with self._lock:
            if server != self.destination.server:
                self.destination = dataclasses.replace(self.destination, server=server)

    def close(self) -> None:
        """Release the locks; leave the segments for the next process."""
        with self._lock:
            self._seal()
            self._owners.close(done=not self._holdings.unreplayed())

    def abandon(self) -> None:
        """In a forked child: drop the inherited files without releasing the parent's locks."""
        if self._active is not None:
            self._active.abandon()
            self._active = None
        self._owners.abandon()

    @property
    def size(self) -> int:
        """Bytes of segments for this table, every process's (as last measured)."""
        return self._size

    # -- writing --------------------------------------------------------------------------------

    def append(
        self,
        entries: list[Captured],
        first: int,
        pending: Recorded | None = None,
        *,
        fit: bool = False,
    ) -> int:
        """Write ``entries``, numbered from ``first``, durably (fsync); returns how many.
        With ``pending``, a transaction that may have committed the first ``pending.count``
        is recorded, to be looked up on replay. With ``fit``, as many of the first entries
        as the room left takes (a chunk bigger than the room must not keep records that
        fit out of it). On failure nothing of it stays (SpoolError)."""
        lines = [line(entry) for entry in entries]
        with self._lock:
            room = self.max_bytes - self._size
            taken = len(lines)
            if fit:
                taken = 0
                for size in (len(text) for text in lines):
                    if size > room:
                        break
                    room -= size
                    taken += 1
            data = b"".join(lines[:taken])
            if not taken or len(data) > self.max_bytes - self._size:
                raise SpoolError(
                    f"{self.directory} is full: it holds {self._size} bytes of its limit of"
                    f" {self.max_bytes}",
                    full=True,
                )
            entries = entries[:taken]
            self.open()  # again, if the directory vanished
            if self._active is not None and self._active.vanished():
                self._lose(self._active.path)  # removed under us: what it held is gone
            elif pending is not None:
                self._seal()  # a recorded transaction starts a segment of its own
            if self._active is None or self._active.next != first:
                self._seal()  # a new segment for a new run of numbers
            active = self._segment(first)
            try:
                active.append(data, len(entries), pending)
            except BaseException:
                self._seal()
                raise
            self._holdings.added(active.path, len(entries))
            self._size += len(data)
            if active.size >= SEGMENT_BYTES or pending is not None:
                self._seal()
            return taken

    def _segment(self, first: int) -> SegmentFile:
        if self._active is None:
            name = f"{self.key}-{self._started:020d}-{self.token}-{first:012d}.rows"
            self._active = SegmentFile.start(self.directory / name, self.destination, first)
            self._holdings.started(self._active.path, first)
            self._size += self._active.size
        return self._active

    def _seal(self) -> None:
        if self._active is not None:
            self._active.close()
            self._active = None

    # -- replaying ------------------------------------------------------------------------------

    def has_backlog(self) -> bool:
        """Is anything waiting to be replayed (this process's, or a dead one's)?"""
        with self._lock:
            if self._replaying is not None or self._holdings.unreplayed():
                return True
            now = time.monotonic()
            if now < self._next_orphan_scan:
                return False
            self._next_orphan_scan = now + ORPHAN_SCAN_INTERVAL
            self._forget_vanished()
            self._size = bytes_of(self.directory, self.key)
            return self._oldest_claimable() is not None

    def claim(self, limit: int) -> SpoolBatch | None:
        """The next up to ``limit`` entries to replay, oldest first (with a recorded
        transaction pending: all the entries it covers)."""
        with self._lock:
            while True:
                replay = self._replaying
                if replay is None:
                    segment = self._oldest_claimable()
                    if segment is None:
                        self._forget_vanished()
                        return None
                    replay = self._replaying = self._read(segment)
                    if replay is None:
                        continue
                if replay.pending is None and replay.done >= len(replay.entries):
                    self._finish(replay)
                    continue
                count, pending = limit, None
                if replay.pending is not None:
                    covered = max(0, replay.pending.count - replay.done)
                    pending = dataclasses.replace(replay.pending, count=covered)
                    count = max(limit, covered)
                entries = replay.entries[replay.done : replay.done + count]
                first = replay.first + replay.done
                return SpoolBatch(replay.path, first, entries, replay.own, pending)

    def prepare_commit(self, batch: SpoolBatch, count: int, xid: str, server_started: str) -> None:
        """Record, durably, that transaction ``xid`` is about to commit ``count`` entries;
        SpoolError if that can't be done (the transaction must then not commit)."""
        with self._lock:
            replay = self._current(batch)
            pending = Recorded(xid, replay.done + count, server_started)
            with disk("record a transaction in the spool"):
                write_progress(replay.path, replay.done, pending)
            replay.pending = pending

    def advance(self, batch: SpoolBatch, count: int) -> None:
        """The next ``count`` entries of the batch are settled (written, or handed on).
        Kept in memory at once; the progress file follows, and is written again at the
        next change if the disk refuses now (a crash before then is covered by the
        recorded transaction)."""
        with self._lock:
            replay = self._current(batch)
            replay.done += count
            replay.pending = None
            if replay.own:
                self._holdings.settled(replay.path, count)
            self._save(replay)

    def resolve(self, batch: SpoolBatch, committed: bool) -> None:
        """What became of the recorded transaction is known: skip its entries if it committed."""
        with self._lock:
            replay = self._current(batch)
            assert replay.pending is not None
            if committed:
                self.advance(batch, replay.pending.count - replay.done)
            else:
                replay.pending = None
                self._save(replay)

    def release(self, batch: SpoolBatch) -> None:
        """A claimed batch goes back unsettled: it will be claimed again."""
        with self._lock:
            self._current(batch)

    def take_lost(self) -> list[Run]:
        """This process's records whose segment files vanished, since the last call."""
        with self._lock:
            return self._holdings.take_lost()

    def new_strangers(self) -> list[Path]:
        """Segments of this table's name found here that were going somewhere else, not
        yet told of."""
        with self._lock:
            new = sorted(self._strangers - self._said_strangers)
            self._said_strangers |= self._strangers
            return new

    def _save(self, replay: _Segment) -> None:
        with contextlib.suppress(OSError):  # written again at the next change
            write_progress(replay.path, replay.done, replay.pending)

    def _current(self, batch: SpoolBatch) -> _Segment:
        replay = self._replaying
        assert replay is not None
        assert replay.path == batch.segment
        return replay

    def _segments(self) -> Iterator[tuple[Path, SegmentName]]:
        return segments_in(self.directory, self.key)

    def _oldest_claimable(self) -> Path | None:
        for segment, name in self._segments():
            if (
                segment not in self._strangers
                and self._owners.holds(name.token)
                and segment.exists()
            ):
                return segment
        self._owners.forget_dead(tokens_in(self.directory))
        return None

    def _read(self, segment: Path) -> _Segment | None:
        """A segment's entries and progress; None if it goes elsewhere or vanished."""
        name = SegmentName.parse(segment)
        assert name is not None
        own = name.token == self.token
        if own and self._active is not None and self._active.path == segment:
            self._seal()
        try:
            found, entries, torn = read_segment(segment)
        except FileNotFoundError:  # removed under us: what it held is gone
            self._lose(segment)
            return None
        except OSError as exc:  # a failing disk: try again when the spool has rested
            raise SpoolError(f"can't read the spool: {exc.strerror}") from exc
        self.corrupt += torn
        if not own and found is not None and not self.destination.accepts(found):
            self._strangers.add(segment)
            if not any(
                n.token == name.token and p not in self._strangers for p, n in self._segments()
            ):
                self._owners.let_go(name.token, done=False)
            return None
        done, pending = read_progress(segment)
        return _Segment(segment, name.first, entries, done, pending, own)

    def _lose(self, segment: Path) -> None:
        """A segment was removed under us: its records that were not settled are lost.
        Never the one being replayed: its entries were read into memory, and are replayed
        from there."""
        assert self._replaying is None or self._replaying.path != segment
        self._holdings.lose(segment)
        if self._active is not None and self._active.path == segment:
            self._seal()

    def _forget_vanished(self) -> None:
        """Own segments we still count on that are no longer on disk."""
        replaying = self._replaying.path if self._replaying is not None else None
        for path in self._holdings.vanished(keep=replaying):
            self._lose(path)
        if self._active is not None and self._active.vanished():
            self._lose(self._active.path)

    def _finish(self, replay: _Segment) -> None:
        """Every entry of the segment is settled: delete it."""
        with contextlib.suppress(OSError):
            self._size = max(0, self._size - replay.path.stat().st_size)
        replay.path.unlink(missing_ok=True)
        replay.path.with_suffix(".done").unlink(missing_ok=True)
        self._holdings.forget(replay.path)
        self._replaying = None
        name = SegmentName.parse(replay.path)
        token = name.token if name else ""
        if token != self.token and not any(n.token == token for _, n in self._segments()):
            self._owners.let_go(token, done=True)
