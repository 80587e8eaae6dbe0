"""Depth task: softplus head, L1 and scale-invariant losses over valid pixels, NYUv2-protocol metrics."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mtl_tf.recipe import parse_recipe
from mtl_tf.tasks import DepthTask, build_tasks
from mtl_tf.training.losses import masked_losses
from mtl_tf.training.task_metrics import TaskMetrics
from tests.tasks.dense_specs import depth_spec, image_dataset

# 0 = no depth.
LABEL = np.array([[[1.0, 2.0, 0.0, 4.0], [0.5, 0.0, 3.0, 8.0]],
                  [[2.0, 2.0, 2.0, 0.0], [1.0, 1.5, 0.0, 6.0]]], "float32")
PRED = np.array([[[1.2, 1.0, 9.0, 4.4], [0.5, 7.0, 2.0, 9.0]],
                 [[2.5, 1.9, 0.0, 3.0], [1.0, 1.0, 5.0, 5.0]]], "float32")


def make_task(**options):
    return DepthTask("depth", spec=depth_spec(), **options)


def test_head_gives_non_negative_float32_depth_under_mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        x = keras.Input((2, 4, 3))
        model = keras.Model(x, make_task().head(keras.layers.Conv2D(4, 3, padding="same", name="shared_c")(x)))
        out = model(np.random.default_rng(0).normal(size=(2, 2, 4, 3)).astype("float32") * 10)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert out.shape == (2, 2, 4) and out.dtype == tf.float32 and np.all(out.numpy() >= 0)
    for loss in ("l1", "scale_invariant"):
        assert np.all(np.isfinite(make_task(loss=loss).per_example_loss(tf.constant(LABEL), out)))


def test_l1_is_the_mean_over_valid_pixels():
    valid = LABEL > 0
    expected = [np.abs(PRED[i] - LABEL[i])[valid[i]].mean() for i in range(2)]
    np.testing.assert_allclose(make_task().per_example_loss(LABEL, PRED), expected, rtol=1e-6)


def test_scale_invariant_loss_matches_eigen_and_ignores_a_global_scale_with_lambda_one():
    valid = LABEL > 0
    expected = []
    for i in range(2):
        g = np.log(np.maximum(PRED[i][valid[i]], 1e-6)) - np.log(LABEL[i][valid[i]])
        expected.append(np.mean(g ** 2) - 0.5 * np.mean(g) ** 2)
    np.testing.assert_allclose(make_task(loss="scale_invariant").per_example_loss(LABEL, PRED), expected, rtol=1e-5)
    full = make_task(loss={"name": "scale_invariant", "lambda": 1.0})
    loss = full.per_example_loss(tf.constant(LABEL), tf.constant(np.where(LABEL > 0, 3.0 * LABEL, 0.0)))
    np.testing.assert_allclose(loss, 0.0, atol=1e-5)


def test_invalid_pixels_and_masked_rows_contribute_nothing():
    task = make_task()
    changed = np.where(LABEL > 0, PRED, 100.0).astype("float32")
    np.testing.assert_allclose(task.per_example_loss(LABEL, PRED), task.per_example_loss(LABEL, changed))
    assert np.all(task.per_example_loss(np.zeros_like(LABEL), PRED).numpy() == 0)
    losses, _ = masked_losses([task], {"depth": tf.constant(LABEL)}, {"depth": tf.constant([0.0, 1.0])},
                              {"depth": tf.constant(np.stack([PRED[0] * np.nan, PRED[1]]))})
    np.testing.assert_allclose(losses.numpy()[0], np.abs(PRED[1] - LABEL[1])[LABEL[1] > 0].mean(), rtol=1e-6)


def numpy_depth_metrics(label, pred):
    valid = label > 0
    d, t = pred[valid], label[valid]
    ratio = np.maximum(np.divide(d, t), np.divide(t, d, out=np.full_like(t, np.inf), where=d > 0))
    return {"abs_err": np.abs(d - t).mean(), "rel_err": (np.abs(d - t) / t).mean(),
            "rmse": np.sqrt(((d - t) ** 2).mean()), "delta1": (ratio < 1.25).mean()}


def test_metrics_are_pixel_weighted_over_the_split_and_skip_invalid_pixels():
    task = make_task()
    metrics = task.make_metrics()
    # Two batches of different valid-pixel counts: the split-wide pixel mean, not a mean of batch means.
    for rows in (slice(0, 1), slice(1, 2)):
        for metric in metrics.values():
            metric.update_state(LABEL[rows], PRED[rows], sample_weight=tf.ones([1]))
    expected = numpy_depth_metrics(LABEL, PRED)
    for name, value in expected.items():
        assert float(metrics[name].result()) == pytest.approx(value, rel=1e-5), name
    assert not task.higher_is_better("abs_err") and not task.higher_is_better("rmse")
    assert task.higher_is_better("delta1") and task.primary_metric == "abs_err"


def test_metrics_through_task_metrics_with_row_masks():
    task = make_task()
    masks = {"depth": tf.constant([1.0, 0.0])}
    trackers = TaskMetrics([task])
    labels, outputs = {"depth": tf.constant(LABEL)}, {"depth": tf.constant(PRED)}
    _, per_example = masked_losses([task], labels, masks, outputs)
    trackers.update(labels, masks, outputs, per_example)
    results = trackers.task_results()["depth"]
    expected = numpy_depth_metrics(LABEL[:1], PRED[:1])
    for name, value in expected.items():
        assert results[name] == pytest.approx(value, rel=1e-5), name


def test_head_and_metrics_round_trip_through_keras_saving(tmp_path):
    task = make_task()
    x = keras.Input((2, 4, 3))
    model = keras.Model(x, {"depth": task.head(x)})
    data = np.random.default_rng(1).normal(size=(2, 2, 4, 3)).astype("float32")
    model.save(tmp_path / "m.keras")
    np.testing.assert_allclose(keras.saving.load_model(tmp_path / "m.keras")(data)["depth"], model(data)["depth"],
                               rtol=1e-6)
    for metric in task.make_metrics().values():
        copy = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(metric))
        assert copy.get_config() == metric.get_config()
    assert list(task.serving_outputs(tf.constant(PRED))) == ["depth"]


@pytest.mark.parametrize("loss, words", [
    ("l2", ["tasks.1.loss", "'l2'", "allowed: l1, scale_invariant"]),
    ({"name": "l1", "lambda": 0.5}, ["tasks.1.loss", "'lambda'", "allowed: (none)"]),
    ({"name": "scale_invariant", "lamda": 0.5}, ["tasks.1.loss", "did you mean 'lambda'"]),
    ({"name": "scale_invariant", "lambda": 2}, ["tasks.1.loss.lambda", "in [0.0, 1.0]", "2"]),
])
def test_bad_loss_options_are_one_line_errors(loss, words):
    with pytest.raises(ValueError) as err:
        make_task(loss=loss, path="tasks.1")
    for word in words:
        assert word in str(err.value)
    assert "\n" not in str(err.value)


def test_build_tasks_passes_depth_options():
    recipe = parse_recipe({
        "name": "scenes",
        "data": {"source": {"kind": "manifest", "path": "m.jsonl"}, "output_dir": "o",
                 "features": [{"name": "image", "kind": "image", "height": 2, "width": 4}]},
        "tasks": [{"name": "depth", "type": "depth", "label": "depth", "depth_scale": 256,
                   "loss": "scale_invariant"}],
    }, check=False)
    (task,) = build_tasks(recipe.tasks, image_dataset([depth_spec()], height=2, width=4))
    assert (task.depth_scale, task.loss_name, task.label_shape, task.output_stride) == (256.0, "scale_invariant",
                                                                                         [2, 4], 1)
    with pytest.raises(ValueError, match="needs its dataset.json entry"):
        DepthTask("depth")


def test_depths_in_tens_of_metres_are_learned_from_the_first_steps():
    """The head works in units of the train split's mean depth: a scene 8 to 100 m deep is
    learned in the steps a unit-scale scene needs, not after the activations grow a hundredfold."""
    from mtl_tf.data.spec import DepthStats, TaskSpec
    from mtl_tf.models import build_model
    from mtl_tf.training import Trainer
    from tests.models.image_toy import image_recipe

    shape = (32, 32, 3)

    def scenes(rows, seed):
        rng = np.random.default_rng(seed)
        images = rng.normal(40, 10, size=(rows, *shape)).clip(0, 255)
        depth = np.broadcast_to(100.0 - 50.0 * np.arange(32)[:, None] / 31, (rows, 32, 32)).copy()  # far at the top
        for i in range(rows):
            top, left = rng.integers(0, 20, size=2)
            images[i, top:top + 12, left:left + 12] = 200
            depth[i, top:top + 12, left:left + 12] = 8.0  # a near object
        return images.astype(np.uint8), depth.astype(np.float32)

    train, test = scenes(64, 0), scenes(32, 1)
    stats = DepthStats(valid=train[1].size, min=8.0, max=100.0, mean=float(train[1].mean()))
    task_spec = TaskSpec(name="depth", type="depth", label_key="depth", dtype="float32", shape=[32, 32],
                         stats=stats)
    task = DepthTask("depth", spec=task_spec)
    recipe = image_recipe("hps", trunk={"name": "resnet", "filters": [8, 16], "depth": 1},
                          decoder={"name": "fpn", "filters": 8}, shape=shape, tasks=[task])

    def data(images, depth, repeat=False):
        ds = tf.data.Dataset.from_tensor_slices(({"image": images}, {"depth": depth},
                                                 {"depth": np.ones(len(images), np.float32)}))
        return (ds.repeat() if repeat else ds).batch(16)

    def model():
        keras.utils.set_random_seed(0)
        return build_model(recipe, image_dataset([task_spec], 32, 32), tasks=[task])

    trainer = Trainer(model, [task], {"name": "adam", "learning_rate": 0.01}, epochs=1, steps_per_epoch=100,
                      verbose=0, jit_compile=False)
    trainer.fit(data(*train, repeat=True))
    error = trainer.evaluate(data(*test))["depth"]["abs_err"]
    mean_error = np.abs(test[1] - stats.mean).mean()  # predicting the train mean everywhere
    assert error < 0.35 * mean_error, (error, mean_error)
