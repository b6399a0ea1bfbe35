"""The caller's side: what ``emit()`` takes from a LogRecord, in the caller's thread, with
no I/O and no exception ever reaching the caller.

Modules, in reading order:

- ``capture``: LogRecord -> entry (the one C call of the common record, and the rest)
- ``entry``: the entry's slots, named
- ``context``: ``bind()``, the fields bound for a block of code
- ``correlation``: the OpenTelemetry trace and span a record was logged in
- ``static``: the handler's ``static_fields``, made JSON once

Then what the writer's thread does with an entry, to make its row:

- ``sanitize``: what PostgreSQL refuses, made storable and noted
- ``notes``: what was changed in a record, said under ``extra_data._pglog``
- ``sizes``: how big each part of a row may be, one policy
- ``row``: entry -> the values of one table row, in the column order
- ``levels``: the number of a record's level, from its name
- ``fingerprint``: which kind of error a record is
- ``scrub``: secrets replaced before they are stored
"""
