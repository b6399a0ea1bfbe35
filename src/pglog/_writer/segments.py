"""Segments: the spool's files, as they are on disk: names, header, lines, progress.

A segment is one file of entries, ``<key>-<started>-<token>-<first>.rows``: ``key`` names
the table (so handlers of different tables can share a directory), ``token`` the process
that wrote it, ``started`` and ``first`` order segments without trusting the clock twice.
Its first line is a header saying where its records were going (see ``Destination``);
then one entry per line, a JSON array, numbered from ``first`` in the order queued. Its
progress file ``<same>.done`` says how many lines are settled, and which transaction,
if any, was about to commit some of them (``Recorded``).

Every change is durable before it counts: written in full (a short write is carried on
until it fails outright), fsync'd, and a new name made durable by syncing its directory.
Every failure is a SpoolError saying what failed (see ``disk``).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from pglog._capture.entry import Captured, Entry, named
from pglog._table.connection import address


class SpoolError(Exception):
    """The disk under the spool failed (or the spool is full); the spool should rest."""

    def __init__(self, reason: str, *, full: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.full = full


@dataclass(frozen=True)
class Destination:
    """Where a spool's records are going, as far as the writer knows it."""

    #: ``schema.table``.
    table: str
    #: The addresses the DSN's hosts resolve to (or socket directories), sorted.
    addresses: tuple[str, ...]
    port: str
    database: str
    #: The server's own identity (its system identifier and database), once connected.
    server: str | None = None

    def header(self) -> dict[str, Any]:
        return {
            "pglog_spool": 1,
            "table": self.table,
            "addresses": list(self.addresses),
            "port": self.port,
            "database": self.database,
            "server": self.server,
        }

    def header_line(self) -> bytes:
        """The first line of a segment going here."""
        return json.dumps(self.header()).encode() + b"\n"

    def accepts(self, header: dict[str, Any]) -> bool:
        """Do a segment's records (its header) go where this writer writes?"""
        if header.get("table") != self.table:
            return False
        if self.server is not None and header.get("server") is not None:
            return bool(header["server"] == self.server)
        same_place = header.get("port") == self.port and header.get("database") == self.database
        return same_place and bool(set(header.get("addresses") or ()) & set(self.addresses))

    def describe(self) -> str:
        return f"{','.join(self.addresses)}:{self.port}/{self.database} {self.table}"


@dataclass(frozen=True)
class Recorded:
    """A transaction recorded before a COMMIT whose outcome was never recorded."""

    xid: str
    #: How many entries it covers (of a SpoolBatch), or the line it covers through (on disk).
    count: int
    #: When the server that gave the id had started (None: recorded by an older pglog).
    server_started: str | None = None


@dataclass(frozen=True)
class SegmentName:
    key: str
    started: int
    token: str
    first: int

    @classmethod
    def parse(cls, path: Path) -> SegmentName | None:
        parts = path.stem.split("-")
        if len(parts) != 4 or not (parts[1].isdigit() and parts[3].isdigit()):
            return None
        return cls(parts[0], int(parts[1]), parts[2], int(parts[3]))


def segments_in(directory: Path, key: str) -> Iterator[tuple[Path, SegmentName]]:
    """The segments of destination ``key`` in ``directory``, oldest first (a listing that
    fails is an empty one: the spool looks again later)."""
    try:
        paths = sorted(directory.glob(f"{key}-*.rows"))
    except OSError:
        paths = []
    for path in paths:
        name = SegmentName.parse(path)
        if name is not None:
            yield path, name


def tokens_in(directory: Path) -> set[str]:
    """The processes that have segments in ``directory``, for any destination."""
    try:
        return {n.token for p in directory.glob("*.rows") if (n := SegmentName.parse(p))}
    except OSError:
        return set()


def bytes_of(directory: Path, key: str) -> int:
    """What destination ``key``'s segments hold on disk."""
    total = 0
    for path, _ in segments_in(directory, key):
        with contextlib.suppress(OSError):
            total += path.stat().st_size
    return total


def destination_of(dsn: str, table: str) -> Destination:
    """Where ``dsn`` and ``table`` send records, its hosts resolved to their addresses
    (a name lookup: call it from the writer's thread, not the caller's)."""
    found = address(dsn)
    if found is None:
        return Destination(table, (), "", "")
    addresses: set[str] = set()
    for host in found.hosts:
        if host.startswith("/"):
            addresses.add(host)  # a Unix socket directory
            continue
        try:
            for *_, sockaddr in socket.getaddrinfo(host, found.port, type=socket.SOCK_STREAM):
                addresses.add(str(sockaddr[0]))
        except OSError:
            addresses.add(host)  # not resolvable now: the name stands for itself
    return Destination(table, tuple(sorted(addresses)), found.port, found.dbname)


def key_for(table: str) -> str:
    """The segment name prefix of ``schema.table``: handlers of different tables can
    share a directory."""
    return hashlib.blake2b(table.encode(), digest_size=6).hexdigest()


@contextlib.contextmanager
def disk(doing: str) -> Iterator[None]:
    """Any OSError while ``doing`` becomes a SpoolError saying what failed, and how."""
    try:
        yield
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        full = exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
        raise SpoolError(f"can't {doing}: {reason}", full=full) from exc


class SegmentFile:
    """A segment open for appending: each append durable, or not there at all."""

    def __init__(self, path: Path, handle: IO[bytes], first: int, size: int) -> None:
        self.path = path
        self.handle = handle
        #: The number the next entry appended must have (a segment holds one run).
        self.next = first
        self.size = size

    @classmethod
    def start(cls, path: Path, destination: Destination, first: int) -> SegmentFile:
        """A new segment at ``path``, its header written and its name made durable."""
        opening = destination.header_line()
        with disk("start a spool segment"):
            handle = path.open("ab", buffering=0)  # no buffer to flush after a failed write
            try:
                write_all(handle.fileno(), opening)
                sync_directory(path.parent)
            except BaseException:
                handle.close()
                path.unlink(missing_ok=True)
                raise
        return cls(path, handle, first, len(opening))

    def append(self, data: bytes, count: int, pending: Recorded | None) -> None:
        """Write ``data`` (``count`` entries) and fsync, then record ``pending`` if given;
        on any failure cut the file back to what it held (SpoolError): replayed lines the
        caller was told weren't kept would be written twice."""
        descriptor = self.handle.fileno()
        with disk("write to the spool"):
            try:
                write_all(descriptor, data)
                os.fsync(descriptor)
                if pending is not None:
                    write_progress(self.path, 0, pending)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.ftruncate(descriptor, self.size)
                    os.fsync(descriptor)
                if pending is not None:
                    self.path.with_suffix(".done").unlink(missing_ok=True)
                raise
        self.next += count
        self.size += len(data)

    def vanished(self) -> bool:
        """Has the file been removed under us (its last name unlinked)?"""
        try:
            return os.fstat(self.handle.fileno()).st_nlink == 0
        except OSError:
            return True

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.handle.close()

    def abandon(self) -> None:
        """In a forked child: let go of the descriptor without flushing anything."""
        with contextlib.suppress(OSError):
            os.close(self.handle.fileno())


def read_segment(segment: Path) -> tuple[dict[str, Any] | None, list[Entry], int]:
    """A segment's header (None for an older segment without one), its entries, and
    how many torn lines it holds (a crash mid-append: never acknowledged, so skipped).
    OSError as from ``open``."""
    found: dict[str, Any] | None = None
    entries: list[Entry] = []
    torn = 0
    with segment.open("rb") as handle:
        for number, text in enumerate(handle):
            if number == 0 and text.startswith(b"{"):
                found = header(text)
                continue
            entry = parse(text)
            if entry is None:
                torn += 1
            else:
                entries.append(entry)
    return found, entries, torn


def line(entry: Captured) -> bytes:
    """An entry's line (named first: see ``entry``)."""
    return json.dumps(named(entry), separators=(",", ":")).encode() + b"\n"


def header(text: bytes) -> dict[str, Any] | None:
    """A segment's header line, read; None if ``text`` is not one (an older segment)."""
    try:
        found = json.loads(text)
    except ValueError:
        return None
    return found if isinstance(found, dict) and "pglog_spool" in found else None


def parse(text: bytes) -> Entry | None:
    """An entry line, read; None if it is torn (a crash mid-append)."""
    try:
        values = json.loads(text)
    except ValueError:
        return None
    if not isinstance(values, list) or len(values) != len(Entry._fields):
        return None
    entry = Entry._make(values)
    return entry._replace(args=tuple(entry.args)) if isinstance(entry.args, list) else entry


def write_progress(segment: Path, done: int, pending: Recorded | None) -> None:
    """Replace ``segment``'s progress, durably (a new file renamed over the old one)."""
    target = segment.with_suffix(".done")
    temporary = segment.with_suffix(".done.tmp")
    recorded = None if pending is None else [pending.xid, pending.count, pending.server_started]
    with temporary.open("w") as handle:
        json.dump({"done": done, "pending": recorded}, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, target)
    sync_directory(segment.parent)


def read_progress(segment: Path) -> tuple[int, Recorded | None]:
    """How many lines of ``segment`` are settled, and the transaction recorded, if any."""
    try:
        progress = json.loads(segment.with_suffix(".done").read_text())
    except (OSError, ValueError):
        return 0, None
    if not isinstance(progress, dict):
        return 0, None
    pending = progress.get("pending")
    recorded = Recorded(str(pending[0]), int(pending[1]), *pending[2:3]) if pending else None
    return int(progress.get("done", 0)), recorded


def sync_directory(directory: Path) -> None:
    """Make a new or renamed file's name durable, not just its contents."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_all(descriptor: int, data: bytes) -> None:
    """Write all of ``data``, or raise: a short write (a disk filling up, a file size
    limit) is carried on from where it stopped, until it fails outright."""
    view = memoryview(data)
    while view:
        view = view[os.write(descriptor, view) :]
