"""A small typed client for the boards HTTP API.

>>> from boards_client import BoardsClient
>>> with BoardsClient("http://localhost:8800") as client:  # doctest: +SKIP
...     job = client.create_job("hello")
...     done = client.wait_for_job(job.id)
"""

from boards_client.client import (
    FINISHED_STATUSES,
    BoardsClient,
    BoardsError,
    Job,
)

__all__ = ["FINISHED_STATUSES", "BoardsClient", "BoardsError", "Job"]
