"""`mtl models promote` on a real MLflow registry: what the gate tells a command-line user."""

import pytest
from click.testing import CliRunner

from mtl_tf.cli.main import cli
from mtl_tf.tracking import TrackedRun, register_export

PRIMARY = {"fraud": ("auc", True), "takeover": ("auc", True)}


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def uri(tmp_path):
    """sqlite store with 'fraud' v1 (champion), v2 (worse on takeover), v3 (takeover undefined)."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    export = tmp_path / "export"
    export.mkdir()
    (export / "signatures.json").write_text("{}")
    for takeover in (0.70, 0.60, float("nan")):
        with TrackedRun("cli", tracking_uri=uri, artifact_location=str(tmp_path / "artifacts")) as run:
            pass
        register_export(run.run_id, export, "fraud", {"fraud/auc": 0.8, "takeover/auc": takeover}, PRIMARY,
                        tracking_uri=uri)
    assert invoke("models", "promote", "fraud", 1, "--tracking-uri", uri).exit_code == 0
    return uri


def test_a_refusal_tells_the_cli_user_the_cli_flags(uri):
    result = invoke("models", "promote", "fraud", 2, "--tracking-uri", uri)
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "takeover: auc 0.6 vs 0.7" in result.output
    assert "rerun with --force --reason TEXT to promote anyway" in result.output
    assert "force=True" not in result.output
    assert [line for line in result.output.splitlines() if line.startswith("Error:")] != []


def test_an_undefined_metric_is_refused_and_shown_as_undefined_when_forced(uri):
    refused = invoke("models", "promote", "fraud", 3, "--tracking-uri", uri)
    assert refused.exit_code != 0 and "takeover: auc undefined (nan) on version 3" in refused.output
    forced = invoke("models", "promote", "fraud", 3, "--tracking-uri", uri, "--force", "--reason", "one class")
    assert forced.exit_code == 0, forced.output
    assert "moved from v1 to v3 (forced: one class)" in forced.output
    assert "takeover: auc 0.7000 -> undefined" in forced.output


def test_force_without_reason_is_one_usage_line(uri):
    result = invoke("models", "promote", "fraud", 2, "--tracking-uri", uri, "--force")
    assert result.exit_code == 2 and "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert errors == ["Error: --force needs --reason TEXT: the reason is recorded on the version so the "
                      "registry shows why the gate was overridden"]
