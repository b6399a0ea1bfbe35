"""The writer's side: from the queue to the table, in threads of its own.

Modules, in reading order:

- ``pipeline``: the writer's side of one handler, put together; closing by one deadline
- ``ledger``: every record's place and fate, in named states
- ``queue``: the bounded FIFO between callers and the writer, and its overflow policy
- ``inflight``: the batch being written, and who decides its fate
- ``parts``: what the stages of one handler's writer side share
- ``writer``: the thread and its loop
- ``delivery``: one batch: retry, isolate a bad row, recreate the table, reject
- ``pace``: how many rows one transaction carries, kept under ``write_timeout``
- ``commit``: what became of a COMMIT whose reply was lost
- ``sink``: the connection, COPY, the commit lookup
- ``deadline``: a time limit on each operation, against a stalled network
- ``retry``: what an error means for the batch, why it happened, and the back-off
- ``spill``: records between memory and the spool, and the spiller thread
- ``spool``: the durable files
- ``segments``: the spool's files as they are on disk: names, header, lines, progress
- ``holdings``: which of this process's records each of its segments holds
- ``owners``: which process a spool's segments belong to, by lock files that die with it
- ``fallback``: where records go that the database can't take
- ``upkeep``: partitions ahead, retention, the writer's reports, on a timer
- ``notices``: pglog's own reports: at once, then at a bounded rate
- ``counters``: how the writer is doing, beyond the ledger
- ``process``: fork, exit and SIGTERM; pglog's own threads
- ``locks``: does this thread hold a lock, and letting go of it (for SIGTERM)
"""
