from matplotlib import pyplot
import pytest

from mtl_tf.tracking import TrackedRun


def test_params_metrics_tags_and_artifacts_land_in_the_store(store, client, tmp_path):
    params = {f"p{i:03d}": i for i in range(150)}  # more than one MLflow batch
    params["model.trunk.units"] = [128, 64]
    params["long"] = "x" * 7000
    report = tmp_path / "report.json"
    report.write_text("{}")
    plots = tmp_path / "plots"
    plots.mkdir()
    (plots / "loss.csv").write_text("epoch,loss\n0,1.0\n")
    with TrackedRun("fraud_signals", run_name="hps", tracking_uri=store["uri"],
                    artifact_location=store["artifacts"]) as run:
        run.log_params(params)
        run.log_epoch(0, {"default_risk/auc": 0.70, "loss": 1.5})
        run.log_epoch(1, {"default_risk/auc": 0.75, "loss": 1.2})
        run.log_metrics({"test/default_risk/auc": 0.74})
        run.set_tags({"dataset": "tiny"})
        run.log_artifact(report)
        run.log_artifacts(plots, "plots")

    stored = client.get_run(run.run_id)
    assert stored.info.status == "FINISHED"
    assert stored.info.run_name == "hps"
    assert len(stored.data.params) == 152
    assert stored.data.params["model.trunk.units"] == "[128, 64]"
    assert len(stored.data.params["long"]) == 6000
    history = client.get_metric_history(run.run_id, "default_risk/auc")
    assert [(m.step, m.value) for m in sorted(history, key=lambda m: m.step)] == [(0, 0.70), (1, 0.75)]
    assert stored.data.metrics["test/default_risk/auc"] == 0.74
    assert stored.data.tags["dataset"] == "tiny"
    assert {a.path for a in client.list_artifacts(run.run_id)} == {"report.json", "plots"}
    assert [a.path for a in client.list_artifacts(run.run_id, "plots")] == ["plots/loss.csv"]


def test_run_ends_failed_when_an_exception_escapes(store, client):
    with pytest.raises(RuntimeError, match="diverged"):
        with TrackedRun("fraud_signals", tracking_uri=store["uri"]) as run:
            run.log_metrics({"loss": float("nan")})
            raise RuntimeError("diverged")
    assert client.get_run(run.run_id).info.status == "FAILED"


def test_figure_is_logged_as_an_image(store, client):
    figure, axes = pyplot.subplots()
    axes.plot([0, 1], [1.0, 0.5])
    with TrackedRun("plots", tracking_uri=store["uri"], artifact_location=store["artifacts"] + "/p") as run:
        run.log_figure(figure, "plots/loss.png")
    pyplot.close(figure)
    assert [a.path for a in client.list_artifacts(run.run_id, "plots")] == ["plots/loss.png"]


def test_a_metric_that_is_not_a_number_is_named(store):
    with TrackedRun("fraud_signals", tracking_uri=store["uri"]) as run:
        with pytest.raises(TypeError, match="metric 'fraud/auc' must be a number; got str 'high'"):
            run.log_metrics({"fraud/auc": "high"})


def test_an_undefined_metric_is_not_logged_as_a_number_and_is_listed(store, client):
    with TrackedRun("fraud_signals", tracking_uri=store["uri"], artifact_location=store["artifacts"]) as run:
        run.log_epoch(1, {"fraud/val_auc": float("nan"), "amount/val_rmse": 2.0})
        run.log_epoch(2, {"fraud/val_auc": float("nan"), "amount/val_rmse": 1.5})
        run.log_metrics({"fraud/test_auc": float("nan"), "fraud/test_loss": 0.3})
    stored = client.get_run(run.run_id)
    assert client.get_metric_history(run.run_id, "fraud/val_auc") == []
    assert "fraud/test_auc" not in stored.data.metrics
    assert [m.value for m in client.get_metric_history(run.run_id, "amount/val_rmse")] == [2.0, 1.5]
    assert stored.data.tags["mtl.undefined_metrics"] == "fraud/test_auc,fraud/val_auc"
    assert run.undefined_metrics == {"fraud/test_auc", "fraud/val_auc"}
