"""The web view, ``pglog serve``: a live page over the log table (the ``web`` extra)."""
