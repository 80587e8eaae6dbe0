"""The `mtl` command line, through click's CliRunner, on the real stack in a temp folder."""

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from mtl_tf.cli.main import cli

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "fraud_signals.yaml"


def invoke(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    return result


def one_line_error(result, *fragments):
    """A failed command: non-zero exit, one 'Error:' line naming the problem, no traceback."""
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    for fragment in fragments:
        assert fragment in errors[0], result.output


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


def small_recipe(workdir, **overrides):
    """The shipped fraud recipe, shrunk for tests and pointed at the temp folder."""
    raw = yaml.safe_load(RECIPE.read_text())
    raw["training"].update({"epochs": 2, "batch_size": 128})
    raw["data"]["shards"] = 2
    raw["model"]["trunk"]["units"] = [16]
    raw["model"]["tower"]["units"] = [8]
    raw["export"]["skew_examples"] = 32
    raw.update(overrides)
    path = workdir / "fraud.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_validate_shipped_recipe():
    result = invoke("recipes", "validate", RECIPE)
    assert result.exit_code == 0, result.output
    assert "3 tasks" in result.output


def test_validate_misspelt_key_is_one_line():
    result = invoke("recipes", "validate", RECIPE, "--set", "training.epochz=3")
    one_line_error(result, "training.epochz", "did you mean 'epochs'")


def test_unknown_component_option_is_one_line():
    result = invoke("recipes", "validate", RECIPE, "--set", "model.trunk.unitz=[4]")
    one_line_error(result, "model.trunk", "unitz", "did you mean 'units'")


def test_unknown_optimizer_lists_known():
    result = invoke("recipes", "validate", RECIPE, "--set", "training.optimizer.name=adamm")
    one_line_error(result, "training.optimizer", "adamm", "adamw")


def test_an_override_that_is_not_valid_yaml_is_one_line_naming_it():
    result = invoke("recipes", "validate", RECIPE, "--set", 'data.source.delimiter="\\s+"')
    one_line_error(result, "--set data.source.delimiter", "not valid YAML", "unknown escape",
                   "--set 'data.source.delimiter=\\s+'")
    assert len(result.output.strip().splitlines()) == 1


def test_show_applies_overrides():
    result = invoke("recipes", "show", RECIPE, "--set", "training.epochs=9")
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(result.output)["training"]["epochs"] == 9


@pytest.mark.parametrize("encoding, fragment", [("utf-16", "iconv -f utf-16 -t utf-8"),
                                                ("shift_jis", "uses bytes below 0x80 inside other characters"),
                                                ("latin-42", "unknown encoding 'latin-42'")])
def test_an_encoding_the_reader_cannot_use_is_one_line(encoding, fragment):
    result = invoke("recipes", "show", RECIPE, "--set", f"data.source.encoding={encoding}")
    one_line_error(result, "data.source.encoding", fragment, f"received '{encoding}'")


def test_missing_recipe_file(workdir):
    one_line_error(invoke("recipes", "validate", "nope.yaml"), "not found")


def test_preprocess_empty_glob(workdir):
    recipe = small_recipe(workdir)
    one_line_error(invoke("data", "preprocess", recipe), "data.source.path", "no files match")


def test_synth_then_preprocess_reports_counts(workdir):
    result = invoke("data", "synth", "fraud_signals", "--rows", 400, "--out", "data/fraud_signals/raw",
                    "--malformed", 0.05)
    assert result.exit_code == 0, result.output
    result = invoke("data", "preprocess", small_recipe(workdir))
    assert result.exit_code == 0, result.output
    assert "rows in 400 = written" in result.output and "rejected" in result.output
    described = invoke("data", "describe", "artifacts/fraud_signals/dataset")
    assert "task transaction_fraud" in described.output


def test_preprocess_missing_feature_column(workdir):
    invoke("data", "synth", "fraud_signals", "--rows", 50, "--out", "data/fraud_signals/raw")
    recipe = small_recipe(workdir)
    result = invoke("data", "preprocess", recipe, "--set", "data.features.0.column=acount_age")
    one_line_error(result, "acount_age")


def test_preprocess_where_every_row_is_rejected_says_so_with_the_reasons(workdir):
    raw = workdir / "raw"
    raw.mkdir()
    (raw / "a.csv").write_text("user,amount,income\n" + "".join(f"u{i},{i},{'>50K' if i % 2 else '<=50K'}\n"
                                                                for i in range(8)))
    recipe = workdir / "census.yaml"
    recipe.write_text(yaml.safe_dump({
        "name": "census_like", "data": {"source": {"path": "raw/*.csv"}, "output_dir": "out", "split": {"key": "user"},
                                        "features": [{"name": "amount", "kind": "numeric"}]},
        "tasks": [{"name": "rich", "type": "binary", "label": "income"}]}))
    result = invoke("data", "preprocess", recipe)
    one_line_error(result, "all 8 rows were rejected: label_not_allowed 8", "'positive' list")
    assert "rows in 8 = written 0" in result.output and "has no labelled rows" not in result.output


def test_promote_unknown_version(workdir):
    result = invoke("models", "promote", "nothing_here", "3", "--tracking-uri", f"sqlite:///{workdir}/mlflow.db")
    assert result.exit_code != 0 and "Traceback" not in result.output


@pytest.mark.slow
@pytest.mark.integration
def test_run_end_to_end_registers_a_servable_model_and_gates_promotion(workdir):
    import tensorflow as tf

    from mtl_tf.data.reader import raw_examples
    from mtl_tf.data.spec import DatasetSpec

    uri = f"sqlite:///{workdir}/mlflow.db"
    # Seed 3 gives every task both classes in validation and test (account_takeover is rare), so
    # every metric is defined and the first promotion has nothing to refuse.
    assert invoke("data", "synth", "fraud_signals", "--rows", 3000, "--out", "data/fraud_signals/raw",
                  "--files", 2, "--malformed", 0.01, "--seed", 3).exit_code == 0
    recipe = small_recipe(workdir)
    result = invoke("run", recipe, "--tracking-uri", uri, "-q")
    assert result.exit_code == 0, result.output
    assert "only one class" not in result.output and "undefined" not in result.output
    assert "registered: fraud_signals version 1" in result.output

    # The export answers TF Serving style requests: serialized tf.Example in, every task out.
    spec = DatasetSpec.read("artifacts/fraud_signals/dataset")
    exports = sorted(Path("artifacts/fraud_signals/export").iterdir())
    loaded = tf.saved_model.load(str(exports[-1]))
    outputs = loaded.signatures["serving_default"](examples=tf.constant(raw_examples(spec, "test", 5)))
    assert sorted(outputs) == ["account_takeover", "default_risk", "transaction_fraud"]
    assert outputs["transaction_fraud"].shape == (5,)
    assert Path("artifacts/fraud_signals/report.md").read_text().count("| transaction_fraud |") == 1

    assert invoke("models", "promote", "fraud_signals", 1, "--tracking-uri", uri).exit_code == 0
    listed = invoke("models", "list", "--tracking-uri", uri)
    assert "champion=v1" in listed.output

    # A model that learned nothing is refused by the gate, then forced with a recorded reason.
    result = invoke("run", recipe, "--tracking-uri", uri, "-q", "--skip-preprocess",
                    "--set", "training.optimizer.learning_rate=0.0", "--set", "training.epochs=1")
    assert result.exit_code == 0, result.output
    refused = invoke("models", "promote", "fraud_signals", 2, "--tracking-uri", uri)
    one_line_error(refused, "fraud_signals")
    forced = invoke("models", "promote", "fraud_signals", 2, "--tracking-uri", uri, "--force",
                    "--reason", "testing the gate")
    assert forced.exit_code == 0, forced.output
    described = invoke("models", "describe", "fraud_signals", "--tracking-uri", uri, "--json")
    assert "testing the gate" in described.output


@pytest.mark.slow
@pytest.mark.integration
def test_run_with_sps_on_numeric_features_and_a_per_task_gradient_method_notes_there_is_nothing_to_probe(workdir):
    import json

    assert invoke("data", "synth", "fraud_signals", "--rows", 1500, "--out", "data/fraud_signals/raw").exit_code == 0
    raw = yaml.safe_load(RECIPE.read_text())
    numeric = [f for f in raw["data"]["features"] if f["kind"] == "numeric"]
    recipe = small_recipe(workdir, data={**raw["data"], "features": numeric, "shards": 1},
                          model={**raw["model"], "architecture": {"name": "sps"}, "trunk": {"name": "mlp", "units": [8]},
                                 "tower": {"name": "mlp", "units": [4]}},
                          training={**raw["training"], "epochs": 1, "batch_size": 256, "gradient": {"name": "pcgrad"},
                                    "early_stopping": None})
    result = invoke("run", recipe, "--tracking-uri", f"sqlite:///{workdir}/mlflow.db", "-q", "--no-register")
    assert result.exit_code == 0, result.output
    assert result.output.count("task relationships not measured") == 1
    report = json.loads(Path("artifacts/fraud_signals/report.json").read_text())
    assert "no shared trainable variables" in report["relations"]["skipped"]
    assert "Not measured: model" in Path("artifacts/fraud_signals/report.md").read_text()


def test_analyze_affinity_missing_run_is_one_line(workdir):
    result = invoke("analyze", "affinity", "no_such_run", "--tracking-uri", f"sqlite:///{workdir}/mlflow.db")
    one_line_error(result, "no MLflow run 'no_such_run'")


def test_baseline_unknown_task_is_one_line(workdir):
    result = invoke("baseline", small_recipe(workdir), "--task", "transaction_frud")
    one_line_error(result, "transaction_frud", "transaction_fraud")


@pytest.mark.slow
@pytest.mark.integration
def test_baseline_then_run_reports_delta_m_and_relations_then_analyze_affinity(workdir):
    import json
    import re

    from mlflow import MlflowClient

    uri = f"sqlite:///{workdir}/mlflow.db"
    assert invoke("data", "synth", "fraud_signals", "--rows", 3000, "--out", "data/fraud_signals/raw").exit_code == 0
    recipe = small_recipe(workdir)
    result = invoke("baseline", recipe, "--tracking-uri", uri, "-q")
    assert result.exit_code == 0, result.output
    baselines = json.loads(Path("artifacts/fraud_signals/baselines.json").read_text())
    assert sorted(baselines["tasks"]) == ["account_takeover", "default_risk", "transaction_fraud"]

    result = invoke("run", recipe, "--tracking-uri", uri, "-q", "--skip-preprocess", "--no-register")
    assert result.exit_code == 0, result.output
    assert "delta_m vs single-task baselines:" in result.output
    run_id = re.search(r"mlflow run: (\w+)", result.output).group(1)
    report = json.loads(Path("artifacts/fraud_signals/report.json").read_text())
    assert report["delta_m"]["available"] and report["delta_m"]["per_task"]
    assert report["relations"]["conflict"]["epoch"] == 2
    assert "## Task relationships" in Path("artifacts/fraud_signals/report.md").read_text()

    client = MlflowClient(uri)
    metrics = client.get_run(run_id).data.metrics
    assert "delta_m/primary" in metrics and "delta_m/all_metrics" in metrics
    history = client.get_metric_history(run_id, "conflict/default_risk__transaction_fraud")
    assert [m.step for m in history] == [1, 2] and all(-1 <= m.value <= 1 for m in history)
    assert "affinity/transaction_fraud__account_takeover" in metrics
    artifacts = {a.path for a in client.list_artifacts(run_id, "analysis")}
    assert {"analysis/conflict.png", "analysis/affinity.png", "analysis/affinity.json"} <= artifacts
    experiment = client.get_experiment_by_name("fraud_signals").experiment_id
    tagged = client.search_runs([experiment], "tags.`mtl.baseline` = 'true'")
    assert sorted(r.data.tags["mtl.task"] for r in tagged) == ["account_takeover", "default_risk",
                                                               "transaction_fraud"]

    result = invoke("analyze", "affinity", run_id, "--tracking-uri", uri, "--groups", 2, "--out", "aff.png")
    assert result.exit_code == 0, result.output
    assert "recommended grouping into 2 group(s):" in result.output and "group 2:" in result.output
    assert Path("aff.png").stat().st_size > 1000
    one_line_error(invoke("analyze", "affinity", tagged[0].info.run_id, "--tracking-uri", uri),
                   "has no analysis/affinity.json")
