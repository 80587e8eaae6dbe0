import pytest

from mtl_tf.tracking import TrackedRun, describe_model, list_models, register_export

PRIMARY = {"fraud": ("auc", True), "amount": ("rmse", False)}


def fake_export(folder):
    """An export folder's layout; the files' content does not matter to the registry."""
    folder.mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(b"pb")
    (folder / "signatures.json").write_text("{}")
    return folder


def run_id(store):
    with TrackedRun("registry", tracking_uri=store["uri"], artifact_location=store["artifacts"]) as run:
        pass
    return run.run_id


def test_register_export_creates_numbered_versions_with_tags(store, client, tmp_path):
    export = fake_export(tmp_path / "export")
    first_run, second_run = run_id(store), run_id(store)
    metrics = {"fraud/auc": 0.81, "fraud/pr_auc": 0.4, "amount/rmse": 2.5}
    assert register_export(first_run, export, "fraud_model", metrics, PRIMARY,
                           tags={"recipe": "fraud_signals"}, tracking_uri=store["uri"]) == 1
    assert register_export(second_run, export, "fraud_model", {**metrics, "fraud/auc": 0.83}, PRIMARY,
                           tracking_uri=store["uri"]) == 2

    version = client.get_model_version("fraud_model", "2")
    assert version.run_id == second_run
    assert version.source.endswith("/export")
    assert version.tags["metric.fraud.auc"] == "0.83"
    assert version.tags["metric.amount.rmse"] == "2.5"
    assert version.tags["primary.fraud"] == "auc"
    assert version.tags["primary.amount.higher_is_better"] == "false"
    assert version.tags["export_location"] == str(export.resolve())
    assert version.tags["export_artifact_uri"] == version.source
    assert client.get_model_version("fraud_model", "1").tags["recipe"] == "fraud_signals"
    logged = {a.path for a in client.list_artifacts(second_run, "export")}
    assert logged == {"export/saved_model.pb", "export/signatures.json"}


def test_describe_and_list_read_versions_metrics_and_aliases(store, client, tmp_path):
    export = fake_export(tmp_path / "export")
    register_export(run_id(store), export, "churn", {"churn/auc": 0.7}, {"churn": ("auc", True)},
                    tracking_uri=store["uri"])
    client.set_registered_model_alias("churn", "champion", "1")

    described = describe_model("churn", tracking_uri=store["uri"])
    assert described["aliases"] == {"champion": 1}
    (version,) = described["versions"]
    assert version["version"] == 1 and version["aliases"] == ["champion"]
    assert version["metrics"] == {"churn": {"auc": 0.7}}
    assert version["primary"] == {"churn": {"metric": "auc", "higher_is_better": True, "value": 0.7}}

    listed = {m["name"]: m for m in list_models(tracking_uri=store["uri"])}
    assert listed["churn"]["latest_version"] == 1
    assert listed["churn"]["aliases"] == {"champion": 1}


def test_unknown_model_name_suggests_the_closest(store, tmp_path):
    register_export(run_id(store), fake_export(tmp_path / "e"), "fraud_signals",
                    {"fraud/auc": 0.8}, {"fraud": ("auc", True)}, tracking_uri=store["uri"])
    with pytest.raises(ValueError, match="no registered model 'fraud_signal'.*did you mean 'fraud_signals'"):
        describe_model("fraud_signal", tracking_uri=store["uri"])


def test_primary_metric_without_a_value_is_refused_before_logging(store, client, tmp_path):
    rid = run_id(store)
    with pytest.raises(ValueError, match="primary metric 'auc' of task 'fraud' has no value"):
        register_export(rid, fake_export(tmp_path / "e"), "other", {"fraud/pr_auc": 0.4},
                        {"fraud": ("auc", True)}, tracking_uri=store["uri"])
    assert client.list_artifacts(rid) == []


@pytest.mark.slow
@pytest.mark.integration
def test_registered_real_export_loads_from_the_artifact_store(store, client, tmp_path):
    import tensorflow as tf
    from mlflow.artifacts import download_artifacts

    from mtl_tf.export import export_model
    from tests.export.tiny import complete_examples, make_model, make_spec, make_tasks

    tasks = make_tasks()
    result = export_model(make_model(tasks), make_spec(), tasks, tmp_path / "export")
    version = register_export(run_id(store), result.saved_model_dir, "tiny",
                              {"fraud/auc": 0.8}, {"fraud": ("auc", True)}, tracking_uri=store["uri"])
    uri = client.get_model_version("tiny", str(version)).tags["export_artifact_uri"]
    local = download_artifacts(artifact_uri=uri, dst_path=str(tmp_path / "download"))
    served = tf.saved_model.load(local).signatures["serving_default"](
        examples=tf.constant(complete_examples(2)))
    assert served["segment"].shape == (2, 3)
