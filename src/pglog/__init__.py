"""pglog: Python logging into PostgreSQL."""

from pglog.config import ConfigError
from pglog.context import bind
from pglog.handler import DatabaseLogHandler
from pglog.manager import LoggerManager, get_logger, initialize_logger, shutdown_logging
from pglog.timing import timed

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
