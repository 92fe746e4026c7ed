"""The background worker (dramatiq). ``boards.workers.actors:broker`` is what dramatiq runs."""
