"""pglog: Python logging into PostgreSQL.

The packages are a record's way, read in this order:

- ``_capture``: the caller's thread (a LogRecord taken as an entry, bound context,
  sanitising), and the row an entry becomes in the writer;
- ``_writer``: the queue and its ledger, the writer's loop, delivery, the lost-COMMIT
  lookup, the spool, the fallback, the process hooks;
- ``_table``: the columns, schema, migrations, partitions, retention, the writers'
  reports, and what the CLI and the web view read back;
- the faces: ``_options`` (the handler's options, once; their kinds in ``_kinds``),
  ``_handler``, ``_manager`` with ``_config`` (the YAML's keys; ``_yaml`` reads the file
  as written), ``_cli``, ``_web``; beside them ``_text`` (text shown safely),
  ``_timing``, ``_demo`` and ``_embedded``.

Only the names below are public.
"""

from pglog._capture.context import bind
from pglog._config import ConfigError
from pglog._handler import DatabaseLogHandler
from pglog._manager import LoggerManager, get_logger, initialize_logger, shutdown_logging
from pglog._timing import timed

__all__ = [
    "ConfigError",
    "DatabaseLogHandler",
    "LoggerManager",
    "bind",
    "get_logger",
    "initialize_logger",
    "shutdown_logging",
    "timed",
]
__version__ = "0.1.0"
