"""pglog: Python logging into PostgreSQL."""

from pglog.config import ConfigError
from pglog.handler import DatabaseLogHandler
from pglog.manager import LoggerManager, get_logger, initialize_logger, shutdown_logging

__all__ = [
    "ConfigError",
    "DatabaseLogHandler",
    "LoggerManager",
    "get_logger",
    "initialize_logger",
    "shutdown_logging",
]
__version__ = "0.1.0"
