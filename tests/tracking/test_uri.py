from pathlib import Path

from mtl_tf.tracking import resolve_tracking_uri


def test_cli_value_wins_over_environment_and_recipe(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://env:5000")
    assert resolve_tracking_uri("http://cli:5000", "http://recipe:5000") == "http://cli:5000"


def test_environment_wins_over_recipe(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://env:5000")
    assert resolve_tracking_uri(None, "http://recipe:5000") == "http://env:5000"


def test_recipe_value_when_no_option_and_no_environment(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert resolve_tracking_uri(None, "http://recipe:5000") == "http://recipe:5000"


def test_default_is_sqlite_in_the_working_directory(monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    uri = resolve_tracking_uri(None)
    assert uri.startswith("sqlite:///")
    assert Path(uri[len("sqlite:///"):]) == tmp_path / "mlflow.db"
    assert resolve_tracking_uri("  ", "") == uri
