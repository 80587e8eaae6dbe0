"""Fixtures shared by the reader tests (a module may define its own `spec` or `tasks`): a tiny dataset (64 rows: train 48 in 2 shards, test 16)
and the three reading modes."""

import pytest

from mtl_tf.tasks import BinaryTask
from tests.helpers.tiny_dataset import make_tiny_dataset

READER_ROWS = 64


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    return make_tiny_dataset(tmp_path_factory.mktemp("reader"), rows=READER_ROWS, seed=0)


@pytest.fixture(scope="module")
def tasks():
    return [BinaryTask("fraud"), BinaryTask("default_risk")]


READINGS = {"streamed": {"in_memory": False, "cache": "none"}, "disk_cache": {"cache": "disk"},
            "in_memory": {"in_memory": True}}


@pytest.fixture(params=list(READINGS), ids=list(READINGS))
def reading(request, monkeypatch):
    """make_dataset options of each reading mode: the shards parsed every pass, the parsed
    disk cache (in chunks of 16 rows, so a tiny split has several), the split held in memory."""
    monkeypatch.setattr("mtl_tf.data.reader._CHUNK_BYTES", 1)
    return READINGS[request.param]
