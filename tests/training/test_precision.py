"""Mixed precision and XLA in the Trainer: half-precision compute with float32 weights and
outputs, float16 loss scaling that skips overflowing steps, and the same step under XLA."""

import keras
import numpy as np
import pytest

from mtl_tf.training import Trainer
from tests.training.training_toy import build_model, make_tasks, toy_dataset, weights_of


def trainer(policy=None, gradient="sum", **kwargs):
    tasks = make_tasks()
    return Trainer(lambda: build_model(tasks), tasks, {"name": "sgd", "learning_rate": 0.1}, gradient=gradient,
                   epochs=kwargs.pop("epochs", 2), mixed_precision=policy, verbose=0, **kwargs)


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
@pytest.mark.parametrize("gradient", ["sum", "pcgrad", {"name": "mgda", "rep_grad": True}])
def test_half_precision_trains_with_float32_weights_and_outputs(policy, gradient):
    before = keras.config.dtype_policy().name
    run = trainer(policy, gradient)
    assert keras.config.dtype_policy().name == before  # the global policy is put back
    compute = {layer.dtype_policy.compute_dtype for layer in run.model.layers if layer.weights}
    assert compute & {"bfloat16", "float16"}, compute
    assert all(keras.backend.standardize_dtype(w.dtype) == "float32" for w in run.model.weights)
    start = weights_of(run.model)
    history = run.fit(toy_dataset(rows=128), toy_dataset(rows=64, seed=1))
    assert all(np.isfinite(e["loss"]) and np.isfinite(e["val_loss"]) for e in history.epochs)
    assert any(not np.allclose(a, b) for a, b in zip(start, weights_of(run.model)))
    features = next(iter(toy_dataset(rows=8)))[0]
    outputs = run.model(features)
    assert all(keras.backend.standardize_dtype(v.dtype) == "float32" and np.all(np.isfinite(v))
               for v in outputs.values())
    if policy == "mixed_float16":
        assert isinstance(run.optimizer, keras.optimizers.LossScaleOptimizer)


@pytest.mark.parametrize("gradient", ["sum", "pcgrad"])
def test_float16_skips_a_step_whose_gradients_overflow_and_halves_the_scale(gradient):
    run = trainer("mixed_float16", gradient, epochs=1)
    run.optimizer.dynamic_scale.assign(2.0 ** 120)  # float16 gradients overflow at this scale
    start = weights_of(run.model)
    run.fit(toy_dataset(rows=32, batch_size=32))
    assert all(np.array_equal(a, b) for a, b in zip(start, weights_of(run.model)))  # the step was skipped
    assert float(run.optimizer.dynamic_scale.numpy()) == 2.0 ** 119


def test_loss_scaling_gives_the_update_of_float32_arithmetic_on_the_gradients():
    # With per-task gradients, the aggregator must see the unscaled Gram matrix: MGDA's
    # coefficients (and so the update) do not depend on the loss scale.
    updates = []
    for scale in (1.0, 2.0 ** 10):
        run = trainer("mixed_float16", "mgda", epochs=1)
        run.optimizer.dynamic_scale.assign(scale)
        start = weights_of(run.model)
        run.fit(toy_dataset(rows=32, batch_size=32))
        updates.append([b - a for a, b in zip(start, weights_of(run.model))])
    for small, large in zip(*updates):
        np.testing.assert_allclose(small, large, atol=5e-3)


def test_xla_gives_the_weights_of_the_plain_step():
    finals = []
    for jit in (False, True):
        run = trainer(jit_compile=jit, gradient="pcgrad")
        assert run.jit_compile is jit
        run.fit(toy_dataset(rows=96))
        finals.append(weights_of(run.model))
    for plain, compiled in zip(*finals):
        np.testing.assert_allclose(plain, compiled, rtol=1e-4, atol=1e-5)


def test_an_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="mixed_precision must be one of mixed_float16, mixed_bfloat16"):
        trainer("float8")


def test_xla_with_half_precision_on_a_cpu_is_refused_up_front():
    if keras.config.backend() == "tensorflow":
        import tensorflow as tf

        if any(d.device_type != "CPU" for d in tf.config.list_physical_devices()):
            return  # on an accelerator the combination is allowed
    with pytest.raises(ValueError, match="XLA on a CPU refuses half-precision gradients"):
        trainer("mixed_bfloat16", jit_compile=True)


def test_a_model_trained_in_mixed_precision_is_exported_in_float32_and_passes_the_skew_check(tmp_path):
    import tensorflow as tf

    from mtl_tf.recipe import parse_recipe
    from mtl_tf.data.reader import make_dataset
    from mtl_tf.runner import export_and_check, make_trainer
    from mtl_tf.tasks import build_tasks
    from tests.helpers.tiny_dataset import make_tiny_dataset, tiny_recipe

    spec = make_tiny_dataset(tmp_path)
    raw = tiny_recipe(spec)
    raw["training"] = {"mixed_precision": "mixed_bfloat16", "epochs": 1, "batch_size": 16, "early_stopping": None}
    recipe = parse_recipe(raw, check=False)
    tasks = build_tasks(recipe.tasks, spec)
    run = make_trainer(recipe, spec, tasks, tmp_path / "run", tf.distribute.get_strategy(), verbose=0)
    assert {layer.dtype_policy.compute_dtype for layer in run.model.layers if layer.weights} >= {"bfloat16"}
    run.fit(make_dataset(spec, "train", tasks, batch_size=16))
    export_dir, skew = export_and_check(recipe, spec, tasks, run.model, tmp_path / "run", None)
    assert skew.max_abs_difference and max(skew.max_abs_difference.values()) <= recipe.export.skew_tolerance
    served = tf.saved_model.load(str(export_dir))
    assert all(v.dtype == tf.float32 for v in served.signatures["serve_features"].structured_outputs.values())
