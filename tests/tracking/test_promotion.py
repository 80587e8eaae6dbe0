import json

import pytest

from mtl_tf.tracking import PromotionRefused, TrackedRun, promote, register_export

PRIMARY = {"fraud": ("auc", True), "takeover": ("auc", True), "amount": ("rmse", False)}


@pytest.fixture(scope="module")
def model(store, tmp_path_factory):
    """'fraud_model' with four versions: a baseline, a worse one, a better one, a wash."""
    export = tmp_path_factory.mktemp("export")
    (export / "signatures.json").write_text("{}")
    scores = [(0.80, 0.70, 2.0), (0.80, 0.65, 2.0), (0.82, 0.71, 1.9), (0.799, 0.70, 2.001)]
    for fraud, takeover, rmse in scores:
        with TrackedRun("promotion", tracking_uri=store["uri"],
                        artifact_location=store["artifacts"]) as run:
            pass
        metrics = {"fraud/auc": fraud, "takeover/auc": takeover, "amount/rmse": rmse}
        register_export(run.run_id, export, "fraud_model", metrics, PRIMARY, tracking_uri=store["uri"])
    return "fraud_model"


def holder(client, alias="champion"):
    return int(client.get_model_version_by_alias("fraud_model", alias).version)


def start_from(client, version, alias="champion"):
    client.set_registered_model_alias("fraud_model", alias, str(version))


def test_first_promotion_sets_the_alias(store, client, model):
    result = promote(model, 2, alias="first", tracking_uri=store["uri"])
    assert (result.version, result.previous, result.forced) == (2, None, False)
    assert holder(client, "first") == 2
    assert client.get_model_version(model, "2").tags["promotion.first.previous"] == "none"


def test_worse_candidate_is_refused_naming_the_task(store, client, model):
    start_from(client, 1)
    with pytest.raises(PromotionRefused) as refused:
        promote(model, 2, tracking_uri=store["uri"])
    message = str(refused.value)
    assert "takeover: auc 0.65 vs 0.7" in message and "tolerance 0.002" in message
    assert "fraud:" not in message and "amount:" not in message
    assert refused.value.comparison["fraud"]["regressed"] is False
    assert holder(client) == 1


def test_better_candidate_and_a_change_within_tolerance_pass(store, client, model):
    start_from(client, 1)
    result = promote(model, 4, tracking_uri=store["uri"])
    assert result.previous == 1 and result.regressed == []
    assert result.comparison["amount"]["higher_is_better"] is False
    promote(model, 3, alias="challenger", tracking_uri=store["uri"])  # no holder yet
    assert holder(client) == 4 and holder(client, "challenger") == 3


def test_lower_is_better_metric_regresses_when_it_grows(store, client, model):
    start_from(client, 3)
    with pytest.raises(PromotionRefused, match=r"amount: rmse 2 vs 1.9 \(lower is better\)"):
        promote(model, 1, tracking_uri=store["uri"], tolerance=0.05)


def test_force_needs_a_reason(store, client, model):
    start_from(client, 1)
    with pytest.raises(ValueError, match="needs a non-empty reason"):
        promote(model, 2, force=True, reason="  ", tracking_uri=store["uri"])
    assert holder(client) == 1


def test_force_with_a_reason_moves_the_alias_and_records_why(store, client, model):
    start_from(client, 1)
    result = promote(model, 2, force=True, reason="takeover labels were relabelled",
                     tracking_uri=store["uri"])
    assert result.forced and result.regressed == ["takeover"]
    assert holder(client) == 2
    tags = client.get_model_version(model, "2").tags
    assert tags["promotion.champion.reason"] == "takeover labels were relabelled"
    assert tags["promotion.champion.previous"] == "1"
    assert tags["promotion.champion.forced"] == "true"
    assert json.loads(tags["promotion.champion.comparison"])["takeover"]["current"] == 0.7


def test_missing_version_names_the_model_and_existing_versions(store, model):
    with pytest.raises(ValueError, match="model 'fraud_model' has no version 9; existing versions: 1, 2, 3, 4"):
        promote(model, 9, tracking_uri=store["uri"])
    with pytest.raises(ValueError, match="no registered model 'fraud_modle'.*did you mean 'fraud_model'"):
        promote("fraud_modle", 1, tracking_uri=store["uri"])
