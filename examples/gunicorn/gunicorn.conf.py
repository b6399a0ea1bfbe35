"""gunicorn settings: the master and every worker log into PostgreSQL through pglog."""

# The app is imported once, in the master, and the workers are forked from it. A
# forked worker's pglog handler starts clean: its own queue, thread and connection.
preload_app = True
workers = 4

# gunicorn hands this to logging.config.dictConfig in the master before it imports the
# app. The database comes from $PGLOG_DSN; the table ("logs") is created on first use.
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
        "db": {"class": "pglog.DatabaseLogHandler"},
    },
    "root": {"level": "INFO", "handlers": ["console", "db"]},
    "loggers": {
        # gunicorn turns propagation off for its loggers: turn it back on
        "gunicorn.error": {"level": "INFO", "propagate": True},  # master and workers
        "gunicorn.access": {"level": "INFO", "propagate": True},  # one per request
    },
}
