"""The table: the PostgreSQL objects pglog writes, and what the CLI and the web view read.

Modules, in reading order:

- ``connection``: where the database is, and naming it without secrets
- ``schema``: the table's name, DDL and indexes
- ``migrate``: schema versions, adopting a hand-made table
- ``columns``: the table's columns, written down once
- ``partitions``: the time ranges of a partitioned table
- ``retention``: older rows removed, the way that costs writers least
- ``reports``: the writers' reports (``pglog_writers``)
- ``filters``: the one language for choosing rows
- ``reader``: rows out of the table, for people
"""
