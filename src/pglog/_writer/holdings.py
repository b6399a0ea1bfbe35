"""Holdings: which of this process's records each of its spool segments holds.

The ledger knows records by sequence number; the spool keeps them in files that anyone
can remove. Holdings tie the two together: for each segment this process wrote, the run
of numbers it holds and how many of them are settled. So a segment that vanishes turns
into a run of records lost (counted, never left pending), and the spool knows whether
anything of this process's is still to replay when it closes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pglog._writer.ledger import Run


@dataclass
class _Held:
    first: int
    count: int = 0
    done: int = 0


class Holdings:
    """Not thread-safe: used under the spool's lock."""

    def __init__(self) -> None:
        self._segments: dict[Path, _Held] = {}
        self._lost: list[Run] = []

    def started(self, segment: Path, first: int) -> None:
        """This process began ``segment`` with record number ``first``."""
        self._segments[segment] = _Held(first)

    def added(self, segment: Path, count: int) -> None:
        self._segments[segment].count += count

    def settled(self, segment: Path, count: int) -> None:
        """``count`` more of the segment's records were written or handed on."""
        held = self._segments.get(segment)
        if held is not None:
            held.done += count

    def unreplayed(self) -> int:
        return sum(held.count - held.done for held in self._segments.values())

    def vanished(self, keep: Path | None) -> list[Path]:
        """Segments still counted on that are no longer on disk (but for ``keep``, the one
        being replayed: its entries are in memory)."""
        return [path for path in self._segments if path != keep and not path.exists()]

    def lose(self, segment: Path) -> None:
        """``segment`` is gone: its records not yet settled are lost."""
        held = self._segments.pop(segment, None)
        if held is not None and held.count > held.done:
            self._lost.append(Run(held.first + held.done, held.count - held.done))

    def forget(self, segment: Path) -> None:
        """``segment`` was replayed to the end and deleted."""
        self._segments.pop(segment, None)

    def take_lost(self) -> list[Run]:
        lost, self._lost = self._lost, []
        return lost
