from __future__ import annotations

from collections.abc import Iterator

import pytest
from boards_client import BoardsClient
from boards_client.testing import FakeBoardsApi

BASE_URL = "http://boards.test"


@pytest.fixture
def api() -> FakeBoardsApi:
    return FakeBoardsApi()


@pytest.fixture
def client(api: FakeBoardsApi) -> Iterator[BoardsClient]:
    with BoardsClient(BASE_URL, timeout=5, transport=api.transport()) as c:
        yield c
