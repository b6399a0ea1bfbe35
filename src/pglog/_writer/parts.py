"""Parts: what the stages of one handler's writer side share.

Delivery, the commit lookup, upkeep and the writer's loop each work on the same few
objects: the batch in flight (and the ledger under it), the connection, what is said and
what is counted. The pipeline makes them once and hands them round as one, so a stage's
constructor names only what is its own.
"""

from __future__ import annotations

from typing import NamedTuple

from pglog._writer.counters import Counters
from pglog._writer.inflight import InFlight
from pglog._writer.notices import Notices
from pglog._writer.sink import PostgresSink


class Parts(NamedTuple):
    inflight: InFlight
    sink: PostgresSink
    notices: Notices
    counters: Counters
