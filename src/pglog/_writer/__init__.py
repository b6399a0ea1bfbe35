"""The writer's side: from the queue to the table, in one background thread per handler.

Modules, in reading order:

- ``queue``: the bounded FIFO between callers and the writer, and the ledger of fates
- ``writer``: the thread and its loop
- ``sink``: the connection, COPY, and what became of a COMMIT whose reply was lost
- ``retry``: what an error means for the batch, and the back-off
- ``spool``: the durable local overflow
- ``fallback``: where records go that the database can't take
"""
