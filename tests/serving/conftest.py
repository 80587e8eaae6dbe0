"""Fixtures of the serving tests: one tiny tabular model trained and registered (twice), and one
tiny image model registered once, per session."""

import pytest

from tests.serving import registered_images
from tests.serving.registered_model import train_and_register


@pytest.fixture(scope="session")
def registered(tmp_path_factory):
    """`mtl run` of a tiny tabular recipe, registered as versions 1 and 2 of tiny_serve."""
    return train_and_register(tmp_path_factory.mktemp("registered"))


@pytest.fixture
def tracking_env(registered, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registered.uri)
    return registered.uri


@pytest.fixture(scope="session")
def registered_scenes(tmp_path_factory):
    """`mtl run` of a tiny image recipe (segmentation, depth, detection, multiclass, regression),
    registered as version 1 of tiny_scenes."""
    return registered_images.train_and_register(tmp_path_factory.mktemp("registered_scenes"))
