"""correlation: a record logged in an OpenTelemetry span carries its trace and span ids."""

from __future__ import annotations

import json
import logging
from typing import Any

import psycopg
from conftest import HandlerFactory
from helpers import fetch, run_python
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

import pglog


def test_a_record_in_a_span_carries_its_ids_and_a_trace_is_found_by_them(
    make_handler: HandlerFactory, logger: logging.Logger, db: psycopg.Connection[Any], table: str
) -> None:
    """Inside a span: otelTraceID and otelSpanID as OpenTelemetry formats them, beside the
    bound fields; outside: none; ids the instrumentation put on the record win."""
    handler = make_handler()
    logger.addHandler(handler)
    tracer = TracerProvider().get_tracer("test")
    logger.info("before any span")
    assert handler.flush(10)  # the writer has seen OpenTelemetry loaded
    with tracer.start_as_current_span("checkout") as span, pglog.bind(request_id="req-1"):
        logger.info("in the span")
        logger.warning("with extras", extra={"order": 7})
        logger.info("injected", extra={"otelTraceID": "ab" * 16, "otelSpanID": "cd" * 8})
        ids = span.get_span_context()
    logger.info("after the span")
    assert handler.flush(10)
    rows = dict(fetch(db, table, "message, extra_data"))
    trace_id, span_id = format(ids.trace_id, "032x"), format(ids.span_id, "016x")
    assert rows["in the span"] == {
        "otelTraceID": trace_id,
        "otelSpanID": span_id,
        "request_id": "req-1",
    }
    assert rows["with extras"]["otelTraceID"] == trace_id
    assert rows["with extras"]["order"] == 7
    assert rows["injected"]["otelTraceID"] == "ab" * 16
    assert rows["before any span"] == {}
    assert rows["after the span"] == {}
    assert trace.get_current_span().get_span_context().is_valid is False


def test_without_opentelemetry_nothing_is_looked_up_or_imported(pg_dsn: str, table: str) -> None:
    """A program that never imports OpenTelemetry logs as before, and pglog doesn't import
    it either."""
    result = run_python(
        "import logging, sys\n"
        "from pglog import DatabaseLogHandler\n"
        f"handler = DatabaseLogHandler({pg_dsn!r}, table={table!r})\n"
        "log = logging.getLogger('plain'); log.addHandler(handler)\n"
        "log.warning('no tracing here')\n"
        "assert handler.flush(10)\n"
        "print(sorted(name for name in sys.modules if name.startswith('opentelemetry')))\n"
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.replace("'", '"')) == []
