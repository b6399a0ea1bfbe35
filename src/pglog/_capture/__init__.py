"""The caller's side: what ``emit()`` takes from a LogRecord, in the caller's thread, with
no I/O and no exception ever reaching the caller.

Modules, in reading order:

- ``capture``: LogRecord -> entry (the one C call of the common record, and the rest)
- ``context``: ``bind()``, the fields bound for a block of code
- ``sanitize``: what PostgreSQL refuses, made storable and noted
- ``row``: entry -> the values of one table row, in the column order
"""
