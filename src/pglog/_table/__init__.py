"""The table: the PostgreSQL objects pglog writes, and what the CLI and the web view read.

Modules, in reading order:

- ``connection``: where the database is, and naming it without secrets
- ``schema``: the table's name, DDL and indexes
- ``migrate``: schema versions, adopting a hand-made table
- ``indexes``: which of pglog's indexes a table has, and making the ones it lacks
- ``columns``: the table's columns, written down once
- ``layout``: what a Citus distributed table or a TimescaleDB hypertable needs beyond that
- ``partitions``: the time ranges of a partitioned table
- ``retention``: older rows removed, the way that costs writers least
- ``reports``: the writers' reports (``pglog_writers``)
- ``filters``: the one language for choosing rows
- ``search``: ``--grep`` over everything a record says, and its trigram index
- ``kinds``: which rows are errors, and which kind each is, in SQL
- ``errors``: a time range's errors, one group per kind
- ``reader``: rows out of the table, for people
"""
