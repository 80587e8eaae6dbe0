import pytest


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A real MLflow sqlite store and artifact folder for one test module."""
    root = tmp_path_factory.mktemp("mlflow")
    return {"uri": f"sqlite:///{root / 'mlflow.db'}", "artifacts": str(root / "artifacts")}


@pytest.fixture
def client(store):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=store["uri"], registry_uri=store["uri"])
