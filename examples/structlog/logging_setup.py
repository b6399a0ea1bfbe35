"""structlog on top of pglog: structlog renders the event, the stdlib handler stores it."""

import logging

import structlog

import pglog


def configure(handler: logging.Handler | None = None) -> None:
    """Call once at start-up. Key-value pairs land in extra_data; the event is the message."""
    root = logging.getLogger()
    root.addHandler(handler or pglog.DatabaseLogHandler())
    root.setLevel(logging.INFO)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,  # structlog.contextvars.bind_contextvars(...)
            structlog.stdlib.filter_by_level,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.render_to_log_kwargs,  # event -> msg, the rest -> extra=
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
