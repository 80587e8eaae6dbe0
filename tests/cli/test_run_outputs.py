"""Runs of other architectures on one recipe: each keeps its own report, and `--resume`
with another architecture is one line, not TensorFlow's warnings and a shape error."""

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from mtl_tf.cli.main import cli

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "fraud_signals.yaml"


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def recipe(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    raw = yaml.safe_load(RECIPE.read_text())
    raw["training"].update({"epochs": 1, "batch_size": 128})
    raw["data"]["shards"] = 1
    raw["model"]["trunk"]["units"] = [8]
    raw["model"]["tower"]["units"] = [4]
    raw["export"]["skew_examples"] = 16
    raw["analysis"] = {"conflict_batches": 0, "affinity_batches": 0}
    path = tmp_path / "fraud.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert invoke("data", "synth", "fraud_signals", "--rows", 600, "--out", "data/fraud_signals/raw").exit_code == 0
    return path


@pytest.mark.slow
@pytest.mark.integration
def test_two_architectures_keep_their_reports_and_a_resume_across_them_is_one_line(recipe, tmp_path, capfd):
    # The store is not the working directory's default mlflow.db: registration must use it too.
    uri = f"sqlite:///{tmp_path}/store/mlflow.db"
    (tmp_path / "store").mkdir()
    first = invoke("run", recipe, "--tracking-uri", uri, "--set", "model.architecture=hps")
    assert first.exit_code == 0, first.output
    assert "registered: fraud_signals version 1" in first.output
    second = invoke("run", recipe, "--tracking-uri", uri, "--skip-preprocess", "--no-register",
                    "--set", "model.architecture=mmoe")
    assert second.exit_code == 0, second.output

    runs = sorted(Path("artifacts/fraud_signals/runs").iterdir())
    assert [p.name.rsplit("-", 1)[-1] for p in runs] == ["hps", "mmoe"]
    for folder, name in zip(runs, ("hps", "mmoe")):
        report = json.loads((folder / "report.json").read_text())
        assert report["model"]["architecture"] == {"name": name}
        assert f"architecture {name}" in (folder / "report.md").read_text()
        assert (folder / "training_curves.png").stat().st_size > 1000
        assert f"report: {folder}/report.md" in (first if name == "hps" else second).output
    latest = json.loads(Path("artifacts/fraud_signals/report.json").read_text())
    assert latest["model"]["architecture"] == {"name": "mmoe"}

    capfd.readouterr()
    resumed = invoke("run", recipe, "--tracking-uri", uri, "--skip-preprocess", "--resume", "--no-register",
                     "--set", "model.architecture=hps", "--set", "training.epochs=2")
    assert resumed.exit_code == 1, resumed.output
    assert "Traceback" not in resumed.output and "WARNING" not in resumed.output
    assert "WARNING" not in capfd.readouterr().err
    errors = [line for line in resumed.output.splitlines() if line.startswith("Error:")]
    assert errors == ["Error: checkpoints in artifacts/fraud_signals/checkpoints were written by architecture "
                      '{"name": "mmoe"}; this run builds architecture {"name": "hps"}; '
                      "use another output_dir or drop --resume"], resumed.output
