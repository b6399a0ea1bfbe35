"""loguru into pglog: a DatabaseLogHandler is a loguru sink like any logging.Handler."""

import logging

from loguru import logger

import pglog


def configure(handler: logging.Handler | None = None) -> None:
    """Call once at start-up. Fields from logger.bind() and contextualize() land in
    extra_data; the message is loguru's message alone, the traceback goes to its column."""
    logger.add(handler or pglog.DatabaseLogHandler(), format=lambda _: "{message}", level="DEBUG")
