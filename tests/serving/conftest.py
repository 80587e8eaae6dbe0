"""Fixtures of the serving tests: one tiny model trained and registered (twice) per session."""

import pytest

from tests.serving.registered_model import train_and_register


@pytest.fixture(scope="session")
def registered(tmp_path_factory):
    """`mtl run` of a tiny tabular recipe, registered as versions 1 and 2 of tiny_serve."""
    return train_and_register(tmp_path_factory.mktemp("registered"))


@pytest.fixture
def tracking_env(registered, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registered.uri)
    return registered.uri
