"""``pglog serve``: a live web view of the table (the ``web`` extra).

Modules, in reading order:

- ``server``: the web view under uvicorn, in the foreground or in a thread
- ``app``: the HTTP side, a Starlette application over a read-only connection pool
- ``guard``: who may look at the logs, and what a browser may do with what it is sent
- ``params``: a request's query string, read strictly into a filter
- ``queries``: the page of rows and the live poll, with bounded work
- ``volume``: the chart, records per level in bars of time
- ``context``: the records around one, for its permalink
- ``facts``: what the table is, how big, how fresh, what it holds
- ``spread``: the page, live poll and volume in forms Citus runs on every shard

The page itself is ``static/``: hand-written JavaScript modules and one CSS file.
"""
