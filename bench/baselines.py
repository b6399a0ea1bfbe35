"""What pglog is measured against: the stdlib's queue, a naive handler, and the ceiling."""

from __future__ import annotations

import datetime as dt
import logging
import socket
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql

from pglog._table.columns import WRITTEN_NAMES as COLUMNS
from pglog._table.schema import TableName, copy_statement

_UTC = dt.timezone.utc
_HOST = socket.gethostname()


class InsertPerRecordHandler(logging.Handler):
    """The naive handler many projects start with: one INSERT and COMMIT per record."""

    def __init__(self, dsn: str, table: str) -> None:
        super().__init__()
        self._conn = psycopg.connect(dsn, autocommit=True)
        self._insert = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
            sql.Identifier(table),
            sql.SQL(", ").join(map(sql.Identifier, COLUMNS)),
            sql.SQL(", ").join(sql.Placeholder() * len(COLUMNS)),
        )

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._conn.execute(self._insert, minimal_row(record))
        except Exception:
            self.handleError(record)

    def close(self) -> None:
        self._conn.close()
        super().close()


def minimal_row(record: logging.LogRecord) -> tuple[Any, ...]:
    """The least work that turns a record into a row: no sanitising, no extras."""
    return (
        dt.datetime.fromtimestamp(record.created, _UTC),
        record.levelname,
        record.name,
        record.process,
        record.thread,
        record.threadName,
        _HOST,
        record.getMessage(),
        None,
        record.funcName,
        record.module,
        record.filename,
        record.lineno,
        record.pathname,
        record.msg if record.args else None,
        record.levelno,
        None,
        "{}",
    )


def copy_directly(dsn: str, table: str, records: Sequence[logging.LogRecord], batch: int) -> None:
    """The ceiling: the same records, minimal rows, COPY in batches, one transaction each."""
    statement = copy_statement(TableName("public", table))
    with psycopg.connect(dsn) as conn:
        for start in range(0, len(records), batch):
            with conn.cursor() as cur, cur.copy(statement) as copy:
                for record in records[start : start + batch]:
                    copy.write_row(minimal_row(record))
            conn.commit()
