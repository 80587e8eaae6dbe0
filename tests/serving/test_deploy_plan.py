"""Version labels moved in two steps, pruning, the models.config text and model references (no registry)."""

import pytest
from google.protobuf import text_format

from mtl_tf.serving.deploy import ServedModel, plan_deploy, plan_finalize
from mtl_tf.serving.labels import DEFAULT_LABELS, parse_label_mapping
from mtl_tf.serving.model_config import ServedModelConfig, render_model_config
from mtl_tf.serving.reference import ModelRef, parse_model_ref

NEW = ServedModel(name="fraud", registered="fraud", base_path="/models/fraud")


def served(versions, labels=None, pending=None):
    return ServedModel(name="fraud", registered="fraud", base_path="/models/fraud", versions=tuple(versions),
                       labels=dict(labels or {}), pending=dict(pending or {}))


def test_a_first_deploy_lists_the_version_and_labels_it_on_finalize():
    step1 = plan_deploy(NEW, 1, {"champion": 1}, DEFAULT_LABELS).model
    assert step1.versions == (1,) and step1.labels == {} and step1.pending == {"stable": 1}
    step2 = plan_finalize(step1).model
    assert step2.labels == {"stable": 1} and step2.pending == {} and step2.versions == (1,)


def test_a_new_champion_is_listed_beside_the_served_version_before_the_label_moves():
    step1 = plan_deploy(served([1], {"stable": 1}), 2, {"champion": 2}, DEFAULT_LABELS, keep=1)
    # The served version stays listed and labelled until the new one is loaded.
    assert step1.model.versions == (1, 2) and step1.model.labels == {"stable": 1}
    assert step1.model.pending == {"stable": 2} and step1.pruned == ()
    step2 = plan_finalize(step1.model, keep=1)
    assert step2.model.labels == {"stable": 2} and step2.model.versions == (2,) and step2.pruned == (1,)


def test_a_label_moves_at_once_to_a_version_already_listed():
    plan = plan_deploy(served([1, 2], {"stable": 1}), 2, {"champion": 1, "challenger": 2}, DEFAULT_LABELS)
    assert plan.model.labels == {"stable": 1, "canary": 2} and plan.model.pending == {}


def test_keep_spares_labelled_versions_pending_targets_and_the_version_just_deployed():
    current = served([3, 5, 6, 7], {"stable": 3})
    plan = plan_deploy(current, 1, {"champion": 3, "challenger": 7}, DEFAULT_LABELS, keep=1)
    assert plan.model.versions == (1, 3, 7) and plan.pruned == (5, 6)
    assert plan.model.labels == {"stable": 3, "canary": 7}


def test_an_alias_whose_version_is_not_laid_out_leaves_its_label_where_it_was():
    plan = plan_deploy(served([1], {"stable": 1}), 2, {"champion": 9, "challenger": 2}, DEFAULT_LABELS)
    assert plan.model.labels == {"stable": 1} and plan.model.pending == {"canary": 2}
    assert plan.notes == ("alias 'champion' points at v9, which is not laid out here: label 'stable' stays at v1",)


def test_a_custom_mapping_names_the_labels():
    plan = plan_finalize(plan_deploy(NEW, 4, {"prod": 4}, parse_label_mapping(["prod=live"])).model)
    assert plan.model.labels == {"live": 4}


def test_keep_below_one_is_refused():
    with pytest.raises(ValueError, match="--keep must be at least 1; received 0"):
        plan_deploy(NEW, 1, {}, DEFAULT_LABELS, keep=0)


def test_the_config_is_a_model_server_config_tf_serving_parses():
    from tensorflow_serving.config import model_server_config_pb2

    text = render_model_config([ServedModelConfig("fraud", "/models/fraud", (2, 1), {"stable": 1, "canary": 2}),
                                ServedModelConfig("churn", "gs://bucket/models/churn", (7,))])
    config = text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
    fraud, churn = config.model_config_list.config
    assert (fraud.name, fraud.base_path, fraud.model_platform) == ("fraud", "/models/fraud", "tensorflow")
    assert list(fraud.model_version_policy.specific.versions) == [1, 2]
    assert dict(fraud.version_labels) == {"stable": 1, "canary": 2}
    assert (churn.base_path, list(churn.model_version_policy.specific.versions)) == ("gs://bucket/models/churn", [7])


def test_a_label_on_an_unlisted_version_is_not_written():
    with pytest.raises(ValueError, match=r"labels \{'stable': 3\} point at versions it does not list \(1\)"):
        render_model_config([ServedModelConfig("fraud", "/models/fraud", (1,), {"stable": 3})])


@pytest.mark.parametrize("text, expected", [
    ("fraud_signals@champion", ModelRef("fraud_signals", alias="champion")),
    ("models:/fraud_signals@challenger", ModelRef("fraud_signals", alias="challenger")),
    ("fraud_signals/3", ModelRef("fraud_signals", version=3)),
    ("models:/team/fraud/12", ModelRef("team/fraud", version=12)),
])
def test_model_references(text, expected):
    assert parse_model_ref(text) == expected


@pytest.mark.parametrize("text", ["fraud_signals", "fraud_signals/latest", "models:/@champion", "fraud/0", "a@1x"])
def test_a_reference_without_alias_or_version_is_refused_with_the_forms(text):
    with pytest.raises(ValueError, match="is not one of NAME@ALIAS or NAME/VERSION"):
        parse_model_ref(text)


def test_label_mapping_defaults_and_refusals():
    assert parse_label_mapping(None) == {"champion": "stable", "challenger": "canary"}
    assert parse_label_mapping(["champion=prod,challenger=beta"]) == {"champion": "prod", "challenger": "beta"}
    with pytest.raises(ValueError, match="must be ALIAS=LABEL"):
        parse_label_mapping(["champion=2"])
    with pytest.raises(ValueError, match="label\\(s\\) prod for several aliases"):
        parse_label_mapping(["champion=prod", "challenger=prod"])


def test_the_state_beside_the_config_reads_back_and_a_foreign_config_is_refused(tmp_path):
    from mtl_tf.serving.deploy import read_state, write_state

    model = served([2, 3], {"stable": 2}, {"stable": 3})
    write_state(tmp_path, {"fraud": model})
    assert read_state(tmp_path) == {"fraud": model}
    assert "value: 2" in (tmp_path / "models.config").read_text() and "value: 3" not in (
        tmp_path / "models.config").read_text()
    foreign = tmp_path / "other"
    foreign.mkdir()
    (foreign / "models.config").write_text("model_config_list {}\n")
    with pytest.raises(ValueError, match="was not written by `mtl models deploy` \\(no deploy.json beside it\\)"):
        read_state(foreign)
