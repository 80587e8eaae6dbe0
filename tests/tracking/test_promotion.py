"""The promotion gate on a real MLflow registry (sqlite in a temp folder).

Every test registers its own model (named after the test), so the tests share no registry
state and pass in any order.
"""

import json
import math
import re

import pytest
from mlflow import MlflowClient

from mtl_tf.tracking import PromotionRefused, TrackedRun, promote, register_export
from mtl_tf.tracking.promotion import PromotionConflict, PromotionNotRecorded

PRIMARY = {"fraud": ("auc", True), "takeover": ("auc", True), "amount": ("rmse", False)}
NAN = float("nan")

# A baseline, a worse one, a better one, a wash.
SCORES = [(0.80, 0.70, 2.0), (0.80, 0.65, 2.0), (0.82, 0.71, 1.9), (0.799, 0.70, 2.001)]


@pytest.fixture
def export(tmp_path):
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "signatures.json").write_text("{}")
    return folder


@pytest.fixture
def name(request):
    """A registered model name of this test's own."""
    return re.sub(r"\W", "_", request.node.name)


def register(store, export, name, fraud, takeover, rmse, primary=PRIMARY):
    """A new version of ``name`` with these test metrics; returns its number."""
    with TrackedRun("promotion", tracking_uri=store["uri"], artifact_location=store["artifacts"]) as run:
        pass
    metrics = {"fraud/auc": fraud, "takeover/auc": takeover, "amount/rmse": rmse}
    metrics = {key: value for key, value in metrics.items() if key.split("/")[0] in primary}
    return register_export(run.run_id, export, name, metrics, primary, tracking_uri=store["uri"])


@pytest.fixture
def model(store, export, name):
    """``name`` with the four versions of SCORES."""
    for scores in SCORES:
        register(store, export, name, *scores)
    return name


def holder(client, name, alias="champion"):
    return int(client.get_model_version_by_alias(name, alias).version)


def promotion_tags(client, name, version, alias="champion"):
    return {k: v for k, v in client.get_model_version(name, str(version)).tags.items()
            if k.startswith(f"promotion.{alias}.")}


def test_first_promotion_sets_the_alias(store, client, model):
    result = promote(model, 2, alias="first", tracking_uri=store["uri"])
    assert (result.version, result.previous, result.forced) == (2, None, False)
    assert holder(client, model, "first") == 2
    assert client.get_model_version(model, "2").tags["promotion.first.previous"] == "none"


def test_worse_candidate_is_refused_naming_the_task(store, client, model):
    client.set_registered_model_alias(model, "champion", "1")
    with pytest.raises(PromotionRefused) as refused:
        promote(model, 2, tracking_uri=store["uri"])
    message = str(refused.value)
    assert "takeover: auc 0.65 vs 0.7" in message and "tolerance 0.002" in message
    assert "fraud:" not in message and "amount:" not in message
    assert "(held by version 1)" in message
    assert message.endswith("pass force=True with a reason to promote anyway")
    assert refused.value.comparison["fraud"]["regressed"] is False
    assert holder(client, model) == 1


def test_better_candidate_and_a_change_within_tolerance_pass(store, client, model):
    client.set_registered_model_alias(model, "champion", "1")
    result = promote(model, 4, tracking_uri=store["uri"])
    assert result.previous == 1 and result.regressed == [] and result.not_compared == []
    assert result.comparison["amount"]["higher_is_better"] is False
    promote(model, 3, alias="challenger", tracking_uri=store["uri"])  # no holder yet
    assert holder(client, model) == 4 and holder(client, model, "challenger") == 3


def test_lower_is_better_metric_regresses_when_it_grows(store, client, model):
    client.set_registered_model_alias(model, "champion", "3")
    with pytest.raises(PromotionRefused, match=r"amount: rmse 2 vs 1.9 \(lower is better\)"):
        promote(model, 1, tracking_uri=store["uri"], tolerance=0.05)


def test_force_needs_a_reason(store, client, model):
    client.set_registered_model_alias(model, "champion", "1")
    with pytest.raises(ValueError, match="needs a non-empty reason"):
        promote(model, 2, force=True, reason="  ", tracking_uri=store["uri"])
    assert holder(client, model) == 1


def test_force_with_a_reason_moves_the_alias_and_records_why(store, client, model):
    client.set_registered_model_alias(model, "champion", "1")
    result = promote(model, 2, force=True, reason="takeover labels were relabelled",
                     tracking_uri=store["uri"])
    assert result.forced and result.regressed == ["takeover"]
    assert holder(client, model) == 2
    tags = client.get_model_version(model, "2").tags
    assert tags["promotion.champion.reason"] == "takeover labels were relabelled"
    assert tags["promotion.champion.previous"] == "1"
    assert tags["promotion.champion.forced"] == "true"
    assert json.loads(tags["promotion.champion.comparison"])["takeover"]["current"] == 0.7
    assert "takeover: auc 0.65 vs 0.7" in json.loads(tags["promotion.champion.overridden"])[0]


def test_missing_version_names_the_model_and_existing_versions(store, model):
    with pytest.raises(ValueError, match=f"model '{model}' has no version 9; existing versions: 1, 2, 3, 4"):
        promote(model, 9, tracking_uri=store["uri"])
    with pytest.raises(ValueError, match=f"no registered model '{model[:-1]}'.*did you mean '{model}'"):
        promote(model[:-1], 1, tracking_uri=store["uri"])


def test_an_undefined_candidate_metric_is_refused_with_or_without_a_holder(store, client, export, name):
    register(store, export, name, 0.80, 0.70, 2.0)
    undefined = register(store, export, name, 0.90, NAN, 1.5)  # e.g. an AUC on a one-class split
    with pytest.raises(PromotionRefused, match=r"takeover: auc undefined \(nan\) on version 2") as refused:
        promote(name, undefined, alias="challenger", tracking_uri=store["uri"])
    assert refused.value.comparison["takeover"]["status"] == "undefined"

    client.set_registered_model_alias(name, "champion", "1")
    with pytest.raises(PromotionRefused, match=r"takeover: auc undefined \(nan\) on version 2"):
        promote(name, undefined, tracking_uri=store["uri"])
    assert holder(client, name) == 1
    assert promotion_tags(client, name, undefined) == {}

    forced = promote(name, undefined, force=True, reason="takeover has one class in test this month",
                     tracking_uri=store["uri"])
    assert forced.forced and forced.regressed == ["takeover"] and holder(client, name) == 2
    assert json.loads(promotion_tags(client, name, undefined)["promotion.champion.comparison"])[
        "takeover"]["candidate"] == "nan"


def test_a_candidate_missing_a_task_of_the_holder_is_refused(store, client, export, name):
    register(store, export, name, 0.80, 0.70, 2.0)
    fewer = register(store, export, name, 0.90, None, 1.5,
                     primary={"fraud": ("auc", True), "amount": ("rmse", False)})
    client.set_registered_model_alias(name, "champion", "1")
    with pytest.raises(PromotionRefused, match="takeover: auc missing on version 2"):
        promote(name, fewer, tracking_uri=store["uri"])
    assert holder(client, name) == 1

    only_takeover = register(store, export, name, None, 0.70, None, primary={"takeover": ("auc", True)})
    client.set_registered_model_alias(name, "champion", str(only_takeover))
    with pytest.raises(PromotionRefused) as refused:
        promote(name, fewer, tracking_uri=store["uri"])
    assert "takeover: auc missing on version 2" in str(refused.value)
    assert "nothing could be compared" not in str(refused.value)


def test_a_holder_without_some_primary_metrics_is_compared_on_the_rest(store, client, export, name):
    register(store, export, name, 0.80, None, None, primary={"fraud": ("auc", True)})
    candidate = register(store, export, name, 0.81, 0.70, 2.0)
    client.set_registered_model_alias(name, "champion", "1")
    result = promote(name, candidate, tracking_uri=store["uri"])
    assert not result.forced and holder(client, name) == 2
    assert result.comparison["fraud"]["status"] == "ok"
    assert sorted(result.not_compared) == ["amount", "takeover"]
    assert result.comparison["takeover"]["note"] == "the holder has no auc"

    worse = register(store, export, name, 0.70, 0.90, 1.0)
    client.set_registered_model_alias(name, "champion", "1")
    with pytest.raises(PromotionRefused, match="fraud: auc 0.7 vs 0.8"):
        promote(name, worse, tracking_uri=store["uri"])


def test_nothing_comparable_needs_force_and_a_reason(store, client, export, name):
    with TrackedRun("promotion", tracking_uri=store["uri"], artifact_location=store["artifacts"]) as run:
        pass
    client.create_registered_model(name)
    client.create_model_version(name, source=str(export), run_id=run.run_id)  # registered by hand, no tags
    candidate = register(store, export, name, 0.80, 0.70, 2.0)
    client.set_registered_model_alias(name, "champion", "1")
    with pytest.raises(PromotionRefused, match="nothing could be compared with version 1") as refused:
        promote(name, candidate, tracking_uri=store["uri"])
    assert "takeover (the holder has no auc)" in str(refused.value)
    assert holder(client, name) == 1

    result = promote(name, candidate, force=True, reason="the old champion predates metric tags",
                     tracking_uri=store["uri"])
    assert result.forced and result.previous == 1 and holder(client, name) == 2
    assert sorted(result.not_compared) == ["amount", "fraud", "takeover"]


def test_a_candidate_without_primary_metrics_is_refused_even_as_the_first_holder(store, client, export, name):
    with TrackedRun("promotion", tracking_uri=store["uri"], artifact_location=store["artifacts"]) as run:
        pass
    client.create_registered_model(name)
    client.create_model_version(name, source=str(export), run_id=run.run_id)
    with pytest.raises(PromotionRefused, match="version 1 has no primary metric tags"):
        promote(name, 1, tracking_uri=store["uri"])


def test_a_failed_alias_move_leaves_no_tag_claiming_a_promotion(store, client, model, monkeypatch):
    client.set_registered_model_alias(model, "champion", "1")

    def unreachable(self, *args, **kwargs):
        raise ConnectionError("tracking server went away")

    monkeypatch.setattr(MlflowClient, "set_registered_model_alias", unreachable)
    with pytest.raises(ConnectionError):
        promote(model, 3, tracking_uri=store["uri"])
    monkeypatch.undo()
    assert holder(client, model) == 1
    assert promotion_tags(client, model, 3) == {}


def test_a_failed_record_after_the_move_says_the_alias_moved(store, client, model, monkeypatch):
    client.set_registered_model_alias(model, "champion", "1")
    real = MlflowClient.set_model_version_tag

    def fails_on_forced(self, name, version, key, value):
        if key.endswith(".forced"):
            raise ConnectionError("tracking server went away")
        return real(self, name, version, key, value)

    monkeypatch.setattr(MlflowClient, "set_model_version_tag", fails_on_forced)
    with pytest.raises(PromotionNotRecorded, match="now points at version 3 .before: version 1.*after previous, "
                                                   "comparison: tracking server went away"):
        promote(model, 3, tracking_uri=store["uri"])
    monkeypatch.undo()
    assert holder(client, model) == 3


def test_an_alias_moved_by_someone_else_during_the_comparison_is_not_overwritten(store, client, model,
                                                                                monkeypatch):
    client.set_registered_model_alias(model, "champion", "1")
    real = MlflowClient.get_model_version_by_alias
    reads = []

    def another_promotion_lands(self, name, alias):
        version = real(self, name, alias)
        if not reads:  # right after the gate read the holder, another process moves the alias
            MlflowClient(tracking_uri=store["uri"]).set_registered_model_alias(name, alias, "3")
        reads.append(version.version)
        return version

    monkeypatch.setattr(MlflowClient, "get_model_version_by_alias", another_promotion_lands)
    with pytest.raises(PromotionConflict, match="moved from version 1 to version 3 while this promotion"):
        promote(model, 4, tracking_uri=store["uri"])
    monkeypatch.undo()
    assert holder(client, model) == 3
    assert promotion_tags(client, model, 4) == {}


def test_nan_is_never_shown_as_a_regression_delta(store, client, export, name):
    register(store, export, name, 0.80, NAN, 2.0)
    candidate = register(store, export, name, 0.81, 0.70, 2.0)
    client.set_registered_model_alias(name, "champion", "1")
    result = promote(name, candidate, tracking_uri=store["uri"])
    row = result.comparison["takeover"]
    assert row["status"] == "not_compared" and row["delta"] is None and math.isnan(row["current"])
    assert result.not_compared == ["takeover"] and result.comparison["fraud"]["status"] == "ok"
