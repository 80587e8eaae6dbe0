import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from mtl_tf.export import SERVE_FEATURES, SERVING_DEFAULT, export_model
from tests.export.tiny import complete_examples, example, features_of, make_model, make_spec, make_tasks

TASKS = ["fraud", "takeover", "segment"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    tasks = make_tasks()
    model = make_model(tasks)
    result = export_model(model, make_spec(), tasks, tmp_path_factory.mktemp("export"))
    return model, result, tf.saved_model.load(str(result.saved_model_dir))


def in_memory(model, examples):
    parsed = tf.io.parse_example(tf.constant(examples), {
        "amount": tf.io.FixedLenFeature([], tf.float32, default_value=float("nan")),
        "balance": tf.io.FixedLenFeature([], tf.float32, default_value=float("nan")),
        "channel": tf.io.FixedLenFeature([], tf.string, default_value="")})
    return {k: v.numpy() for k, v in model(parsed, training=False).items()}


def test_export_has_default_features_and_per_task_signatures(exported):
    _, result, loaded = exported
    expected = {SERVING_DEFAULT, SERVE_FEATURES, "predict_fraud", "predict_takeover", "predict_segment"}
    assert set(loaded.signatures) == expected
    assert result.signatures[0] == SERVING_DEFAULT and set(result.signatures) == expected
    described = json.loads(result.signatures_file.read_text())["signatures"]
    assert described[SERVING_DEFAULT]["inputs"] == {"examples": {"dtype": "string", "shape": [None]}}
    assert set(described[SERVE_FEATURES]["inputs"]) == {"amount", "balance", "channel"}
    assert described["predict_segment"]["outputs"] == {"segment": {"dtype": "float32", "shape": [None, 3]}}


def test_serving_default_on_examples_matches_in_memory_model(exported):
    model, _, loaded = exported
    examples = complete_examples()
    served = loaded.signatures[SERVING_DEFAULT](examples=tf.constant(examples))
    expected = in_memory(model, examples)
    assert set(served) == set(TASKS)
    assert served["fraud"].shape == (6,) and served["segment"].shape == (6, 3)
    for task in TASKS:
        np.testing.assert_allclose(served[task].numpy(), expected[task], atol=1e-6)


def test_examples_with_missing_features_still_answer(exported):
    _, _, loaded = exported
    examples = [example(), example(amount=2.0), example(channel="app"), example(balance=-1.0, segment=1)]
    served = loaded.signatures[SERVING_DEFAULT](examples=tf.constant(examples))
    for task in TASKS:
        assert served[task].shape[0] == 4
        assert np.all(np.isfinite(served[task].numpy())), task
    np.testing.assert_allclose(served["segment"].numpy().sum(axis=1), 1.0, atol=1e-5)


def test_serve_features_takes_named_tensors(exported):
    model, _, loaded = exported
    features = features_of([1.5, -0.5], [10.0, 0.0], ["web", "pos"])
    served = loaded.signatures[SERVE_FEATURES](**features)
    expected = model(features, training=False)
    for task in TASKS:
        np.testing.assert_allclose(served[task].numpy(), expected[task].numpy(), atol=1e-6)


def test_task_signature_returns_only_its_task(exported):
    _, _, loaded = exported
    examples = tf.constant(complete_examples())
    everything = loaded.signatures[SERVING_DEFAULT](examples=examples)
    for task in TASKS:
        alone = loaded.signatures[f"predict_{task}"](examples=examples)
        assert list(alone) == [task]
        np.testing.assert_allclose(alone[task].numpy(), everything[task].numpy(), atol=1e-6)


def test_keras_file_reloads_and_predicts_the_same(exported):
    model, result, _ = exported
    reloaded = keras.saving.load_model(result.keras_path)
    features = features_of([0.3], [2.0], ["app"])
    for task in TASKS:
        np.testing.assert_allclose(reloaded(features)[task].numpy(), model(features)[task].numpy(),
                                   atol=1e-6)


def test_export_refuses_to_overwrite_an_existing_export(exported):
    model, result, _ = exported
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export_model(model, make_spec(), make_tasks(), result.saved_model_dir)


def test_unknown_task_is_named_with_the_model_outputs(tmp_path):
    tasks = make_tasks()
    model = make_model(tasks)
    wrong = make_tasks()[:1]
    wrong[0].name = "frawd"
    with pytest.raises(ValueError, match="task 'frawd' is not a model output.*did you mean 'fraud'"):
        export_model(model, make_spec(), wrong, tmp_path)
    assert not (tmp_path / "saved_model.pb").exists()
