"""Correlation: the OpenTelemetry trace and span a record was logged in, when there is one.

A record logged inside an active span gets that span's ids in its extra_data, under the
names OpenTelemetry's own logging instrumentation gives them (``otelTraceID``,
``otelSpanID``), so a table reads the same whether the instrumentation injected them
into the record (its attributes are then the record's extras, and win) or pglog looked
them up. ``pglog query --trace <id>`` and a click in the web view then show the trace.

OpenTelemetry is never imported by pglog, nor required: a program that doesn't use it
pays nothing, not even a look. pglog starts reading the trace context once it sees
``opentelemetry.trace`` among the loaded modules: at its own import, or when the writer
next converts a record (``watch``), so within a flush interval of the program's setting
up OpenTelemetry, before its first span in practice. From then on, the capture asks
for the current span with the fields bound by ``pglog.bind`` (which it reads anyway):
a span's ids are taken like bound fields, in the caller's thread, where the context is.
"""

from __future__ import annotations

import sys
from types import MappingProxyType
from typing import Any

from pglog._capture import capture
from pglog._capture.context import BOUND, Bound, binding

#: The extra_data keys of the ids, as OpenTelemetry's logging instrumentation names them.
TRACE_KEY, SPAN_KEY = "otelTraceID", "otelSpanID"
_MODULE = "opentelemetry.trace"
_BOUND_GET = BOUND.get


class _Watch:
    """Whether OpenTelemetry is still to be looked for."""

    on = True


def watch() -> None:
    """Start reading the trace context if OpenTelemetry has been loaded since the last look
    (the writer calls this for each record it converts, at the cost of a dict look-up)."""
    if _Watch.on and _MODULE in sys.modules:
        _read_spans(sys.modules[_MODULE])


def _read_spans(trace: Any) -> None:
    _Watch.on = False
    current_span = trace.get_current_span

    def bound_and_span() -> Bound | None:
        bound = _BOUND_GET()
        try:
            context = current_span().get_span_context()
            if not context.is_valid:
                return bound
            ids = {
                TRACE_KEY: format(context.trace_id, "032x"),
                SPAN_KEY: format(context.span_id, "016x"),
            }
        except Exception:  # a tracer's own trouble must not cost the record
            return bound
        if bound is None:
            return Bound(MappingProxyType(ids), ids, ids)
        return binding({**ids, **bound.fields})

    capture._BOUND_GET = bound_and_span  # type: ignore[assignment]


watch()
