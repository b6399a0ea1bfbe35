"""``pglog serve``: a live web view of the table (the ``web`` extra)."""
