"""TaskProbe and RelationsMonitor on a model whose relationships are known in closed form."""

import json

import numpy as np
import pytest
import tensorflow as tf

from mtl_tf.analysis.monitor import RelationsMonitor
from mtl_tf.analysis.probe import TaskProbe
from tests.analysis import toy


def test_gradients_match_closed_form_and_manual_tape():
    m, tasks = toy.model(), toy.tasks()
    losses, grads = TaskProbe(m, tasks).task_gradients(toy.batch())
    np.testing.assert_allclose(losses, [1.0, 4.0, 1.0])
    np.testing.assert_allclose(grads[:, 0], [-2.0, -4.0, 2.0], rtol=1e-6)  # d/dw (w - y)^2 at w = 0

    features, labels, _ = toy.batch()
    shared = m.get_layer("shared_w").kernel
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(m(features)["b"] - labels["b"]))
    np.testing.assert_allclose(grads[1], tape.gradient(loss, shared).numpy().ravel(), rtol=1e-6)


def test_conflict_signs_opposite_tasks():
    conflict = TaskProbe(toy.model(), toy.tasks()).conflict([toy.batch()])
    np.testing.assert_allclose(conflict, [[1, 1, -1], [1, 1, -1], [-1, -1, 1]], atol=1e-6)


def test_affinity_helps_and_hurts_with_exact_values_and_weights_untouched():
    m, tasks = toy.model(), toy.tasks()
    before = toy.weights(m)
    z = TaskProbe(m, tasks).affinity([toy.batch()], learning_rate=0.1)
    # a's step: w = 0.2. b: 1 - (0.2 - 2)^2 / 4 = 0.19 (helps); c: 1 - (0.2 + 1)^2 / 1 = -0.44 (hurts).
    assert z[0, 1] == pytest.approx(0.19, abs=1e-5)
    assert z[0, 2] == pytest.approx(-0.44, abs=1e-5)
    assert z[2, 0] < 0 and z[1, 0] > 0
    for old, new in zip(before, toy.weights(m)):
        np.testing.assert_array_equal(old, new)  # bit for bit: the lookahead never writes a variable


def test_unlabelled_task_is_undefined_not_zero():
    probe = TaskProbe(toy.model(), toy.tasks())
    conflict = probe.conflict([toy.batch(missing="c")])
    z = probe.affinity([toy.batch(missing="c")], 0.1)
    assert np.isnan(conflict[0, 2]) and np.isnan(z[0, 2])
    assert conflict[0, 1] == pytest.approx(1.0)


def test_model_without_shared_variables_is_refused():
    import keras

    inputs = {"x": keras.Input(shape=(), name="x")}
    x = keras.layers.Reshape((1,))(inputs["x"])
    outputs = {t: keras.layers.Dense(1, name=f"{t}_head")(x) for t in ("a", "b")}
    with pytest.raises(ValueError, match="no shared trainable variables"):
        TaskProbe(keras.Model(inputs, outputs), toy.tasks()[:2])


def test_monitor_logs_metrics_writes_files_and_plots(tmp_path):
    m, tasks = toy.model(width=2), toy.tasks()
    monitor = RelationsMonitor(m, tasks, [toy.batch(), toy.batch()], tmp_path, conflict_batches=2,
                               affinity_batches=1, learning_rate=lambda: 0.1, every=2)
    assert monitor.on_epoch_end(1) == {}  # not due
    logs = monitor.on_epoch_end(2)
    assert logs["conflict/a__c"] == pytest.approx(-1.0, abs=1e-6)
    assert "conflict/c__a" not in logs  # the symmetric half is logged once
    assert logs["affinity/a__b"] > 0 > logs["affinity/a__c"]
    assert logs["analysis/seconds"] > 0
    saved = json.loads((tmp_path / "affinity.json").read_text())
    assert saved["tasks"] == ["a", "b", "c"] and saved["epochs"][0]["epoch"] == 2
    assert saved["epochs"][0]["learning_rate"] == 0.1
    assert [p.name for p in monitor.plots()] == ["conflict.png", "affinity.png"]
    assert (tmp_path / "conflict.png").stat().st_size > 1000

    resumed = RelationsMonitor(m, tasks, [toy.batch()], tmp_path, learning_rate=0.1, resume=True)
    resumed.on_epoch_end(3)
    epochs = [e["epoch"] for e in json.loads((tmp_path / "conflict.json").read_text())["epochs"]]
    assert epochs == [2, 3]


def test_monitor_of_an_sps_model_says_once_there_is_nothing_to_measure_and_the_run_goes_on(tmp_path):
    from mtl_tf.evaluation.report import to_markdown
    from tests.models.toy import tasks as toy_tasks, toy_data, toy_model

    x, labels = toy_data(8)
    batch = ({"x": x}, labels, {k: np.ones(8, "float32") for k in labels})
    notes = []
    monitor = RelationsMonitor(toy_model("sps"), toy_tasks(), [batch], tmp_path, echo=notes.append)
    assert len(notes) == 1 and "no shared trainable variables" in notes[0] and "sps" in notes[0]
    assert monitor.on_epoch_end(1) == {} and monitor.on_epoch_end(2) == {}
    assert monitor.files() == [] and monitor.plots() == [] and len(notes) == 1
    summary = monitor.summary()
    assert summary["tasks"] == ["a", "b"] and "no gradient conflict or affinity to measure" in summary["skipped"]
    report = {"recipe": "r", "tasks": {}, "dataset": {"rows_in": 8, "rejected": 0, "splits": {}}, "relations": summary}
    assert "## Task relationships\n\nNot measured: model" in to_markdown(report)


MIRRORED_SCRIPT = """
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from mtl_tf.analysis.probe import TaskProbe
from tests.analysis import toy
with tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]).scope():
    model = toy.model()
z = TaskProbe(model, toy.tasks()).affinity([toy.batch()], 0.1)
print("AFFINITY", round(float(z[0, 1]), 4), round(float(z[0, 2]), 4))
"""


@pytest.mark.slow
def test_probe_reads_mirrored_variables_of_two_replicas():
    """Under a strategy the probe runs outside strategy.run on the local copy of the weights."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", MIRRORED_SCRIPT], cwd=root, capture_output=True, text=True,
                          timeout=300, env={"PYTHONPATH": str(root), "TF_CPP_MIN_LOG_LEVEL": "3",
                                            "PATH": "/usr/bin:/bin"})
    assert "AFFINITY 0.19 -0.44" in done.stdout, done.stdout + done.stderr[-2000:]
