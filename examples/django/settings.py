"""Settings of a small Django site whose logging goes to PostgreSQL through pglog."""

import os

SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "urls"

# Django passes this to logging.config.dictConfig when it starts, in every process
# that serves requests. The database comes from $PGLOG_DSN; the table ("logs") is
# created on first use. Django's own loggers (django.request, django.security...)
# propagate to the root logger, so 404s, 500s and their tracebacks land there too.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {
        "console": {"class": "logging.StreamHandler"},
        "db": {"class": "pglog.DatabaseLogHandler"},
    },
    "root": {"level": "INFO", "handlers": ["console", "db"]},
}
