"""Shared fixtures: an instant to judge at, and keys made once per session."""

from __future__ import annotations

import datetime as dt
import os

import pytest

from mesh.pki.key_cache import ENVIRONMENT
from mesh.pki.keys import KeyPool

#: Every test PKI starts here unless it says otherwise (an emulated instant,
#: never the wall clock).
EPOCH = dt.datetime(2027, 1, 15, 9, 0, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="session", autouse=True)
def key_cache(tmp_path_factory: pytest.TempPathFactory):
    """The persistent key cache of every run here (and of every CLI child) is the session's own."""
    folder = tmp_path_factory.mktemp("key-cache")
    saved = os.environ.get(ENVIRONMENT)
    os.environ[ENVIRONMENT] = str(folder)
    yield folder
    if saved is None:
        os.environ.pop(ENVIRONMENT, None)
    else:
        os.environ[ENVIRONMENT] = saved


@pytest.fixture(scope="session")
def key_pool() -> KeyPool:
    return KeyPool()


@pytest.fixture
def keys(key_pool: KeyPool):
    """A KeySource: unique keys within the test, generated once per session."""
    return key_pool.cursor()


@pytest.fixture
def epoch() -> dt.datetime:
    return EPOCH
