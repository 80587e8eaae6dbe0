"""Task types: masks, losses on labelled rows only, heads, metric directions."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mtl_tf.recipe import parse_recipe
from mtl_tf.tasks import TASK_TYPES, BinaryTask, MulticlassTask, MultilabelTask, RegressionTask, build_tasks


def test_binary_mask_and_clean_treat_nan_as_missing():
    task = BinaryTask("fraud")
    label = tf.constant([1.0, float("nan"), 0.0])
    np.testing.assert_array_equal(task.mask(label), [1, 0, 1])
    np.testing.assert_array_equal(task.clean(label), [1, 0, 0])


def test_multiclass_mask_uses_minus_one():
    task = MulticlassTask("segment", classes=["a", "b", "c"])
    label = tf.constant([2, -1, 0], tf.int64)
    np.testing.assert_array_equal(task.mask(label), [1, 0, 1])
    assert task.parse_feature().default_value == -1


def test_multilabel_row_missing_only_when_label_absent():
    task = MultilabelTask("findings", classes=["x", "y"])
    label = tf.constant([[1.0, 0.0], [float("nan"), float("nan")]])
    np.testing.assert_array_equal(task.mask(label), [1, 0])
    assert task.parse_feature().shape == [2]


@pytest.mark.parametrize("task, label, output, expected", [
    (BinaryTask("b"), [1.0, 0.0], [0.9, 0.2], [-np.log(0.9), -np.log(0.8)]),
    (RegressionTask("r"), [1.0, 3.0], [2.0, 3.0], [1.0, 0.0]),
    (MulticlassTask("m", classes=["a", "b"]), [1, 0], [[0.25, 0.75], [0.5, 0.5]], [-np.log(0.75), -np.log(0.5)]),
])
def test_per_example_loss_matches_formula(task, label, output, expected):
    loss = task.per_example_loss(tf.constant(label), tf.constant(output))
    np.testing.assert_allclose(loss, expected, rtol=1e-4)


def test_heads_give_one_value_per_row_for_scalar_tasks():
    x = keras.Input(shape=(4,))
    for task, shape in ((BinaryTask("b"), (None,)), (RegressionTask("r"), (None,)),
                        (MulticlassTask("m", classes=["a", "b", "c"]), (None, 3))):
        out = task.head(x)
        assert tuple(out.shape) == shape, task.name
    probs = keras.Model(x, BinaryTask("b2").head(x))(np.zeros((2, 4), "float32"))
    assert np.all((probs >= 0) & (probs <= 1))


def test_metric_directions():
    assert BinaryTask("b").higher_is_better("auc")
    assert not RegressionTask("r").higher_is_better("rmse")


def test_unknown_metric_names_allowed_ones():
    with pytest.raises(ValueError, match=r"unknown metric 'acu' \(did you mean 'auc'\?\)"):
        BinaryTask("b", metrics=["acu"])


def test_primary_defaults_to_first_metric():
    assert BinaryTask("b", metrics=["pr_auc", "auc"]).primary_metric == "pr_auc"


def test_masked_metric_ignores_unlabelled_rows():
    task = BinaryTask("b", metrics=["accuracy"])
    metric = task.make_metrics()["accuracy"]
    label = tf.constant([1.0, float("nan"), 0.0])
    output = tf.constant([0.9, 0.9, 0.1])
    metric.update_state(*task.metric_inputs(task.clean(label), output), sample_weight=task.mask(label))
    assert float(metric.result()) == 1.0


def test_build_tasks_from_recipe():
    recipe = parse_recipe({
        "name": "t", "data": {"source": {"path": "x"}, "output_dir": "o", "split": {"key": "k"},
                              "features": [{"name": "a", "kind": "numeric"}]},
        "tasks": [{"name": "y1", "type": "binary", "label": "l1", "weight": 2.0},
                  {"name": "y2", "type": "regression", "label": "l2"}],
    }, check=False)
    tasks = build_tasks(recipe.tasks)
    assert [type(t) for t in tasks] == [BinaryTask, RegressionTask]
    assert tasks[0].weight == 2.0
    assert sorted(TASK_TYPES.names()) == ["binary", "depth", "detection", "multiclass", "multilabel", "regression",
                                          "segmentation"]


def test_tabular_tasks_are_not_dense_and_serve_their_output_as_is():
    for task in (BinaryTask("b"), RegressionTask("r"), MulticlassTask("m", classes=["a", "b"]),
                 MultilabelTask("l", classes=["a", "b"])):
        assert not task.dense and task.output_stride == 1 and task.metrics_support_jit
        output = tf.constant([[0.3, 0.7]])
        assert task.serving_outputs(output)[task.name] is output and list(task.serving_outputs(output)) == [task.name]


def test_image_level_heads_work_on_a_pooled_feature_map():
    image = keras.Input((8, 8, 3))
    pooled = keras.layers.GlobalAveragePooling2D(name="shared_pool")(
        keras.layers.Conv2D(4, 3, padding="same", name="shared_conv")(image))
    tasks = [BinaryTask("b"), RegressionTask("r"), MulticlassTask("m", classes=["a", "b", "c"]),
             MultilabelTask("l", classes=["x", "y"])]
    model = keras.Model(image, {t.name: t.head(pooled) for t in tasks})
    out = model(np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype("float32"))
    assert {k: tuple(v.shape) for k, v in out.items()} == {"b": (2,), "r": (2,), "m": (2, 3), "l": (2, 2)}
    np.testing.assert_allclose(np.sum(out["m"], -1), 1.0, rtol=1e-5)
