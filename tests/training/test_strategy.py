"""`auto` picks what the machine has; `tpu` is a TPUStrategy path that, without a TPU, stops
with one line saying why; the recipe takes both."""

import json
import socket
import time

import pytest
import tensorflow as tf

from mtl_tf.recipe import load_recipe
from mtl_tf.training import make_strategy
from mtl_tf.training.strategy import TPU_HINT, auto_strategy_name

CLUSTER = json.dumps({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}})


def test_auto_is_multi_worker_with_tf_config_then_mirrored_over_gpus_else_default():
    assert auto_strategy_name({"TF_CONFIG": CLUSTER}, gpus=0) == "multi_worker"
    assert auto_strategy_name({"TF_CONFIG": CLUSTER}, gpus=4) == "multi_worker"
    assert auto_strategy_name({}, gpus=2) == "mirrored"
    assert auto_strategy_name({}, gpus=1) == "default"
    assert auto_strategy_name({}, gpus=0) == "default"
    with pytest.raises(ValueError, match="TF_CONFIG is not valid JSON"):
        auto_strategy_name({"TF_CONFIG": "{worker"}, gpus=0)


def test_auto_on_this_machine_without_a_cluster_is_the_default_strategy(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    expected = "mirrored" if len(tf.config.list_physical_devices("GPU")) > 1 else "default"
    assert auto_strategy_name() == expected
    if expected == "default":
        assert make_strategy("auto") is tf.distribute.get_strategy()


def _one_line(error):
    message = str(error.value)
    assert "\n" not in message and "Traceback" not in message
    return message


@pytest.mark.skipif(bool(tf.config.list_logical_devices("TPU")), reason="this machine has a TPU")
def test_tpu_without_a_tpu_is_one_line_saying_why():
    with pytest.raises(ValueError) as caught:
        make_strategy("tpu")
    message = _one_line(caught)
    assert message.startswith("strategy 'tpu' found no TPU at 'local' (TPUs not found in the cluster)")
    assert message.endswith(TPU_HINT)


def test_a_tpu_address_that_does_not_answer_fails_at_once_rather_than_waiting():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    start = time.perf_counter()
    with pytest.raises(ValueError) as caught:
        make_strategy("tpu", f"grpc://127.0.0.1:{port}")
    assert time.perf_counter() - start < 5
    assert _one_line(caught).startswith(f"strategy 'tpu' cannot reach the TPU at 'grpc://127.0.0.1:{port}'")


def test_only_the_tpu_strategy_takes_a_tpu_address(tmp_path):
    with pytest.raises(ValueError, match="only strategy 'tpu' takes a TPU address"):
        make_strategy("mirrored", "local")
    recipe = tmp_path / "r.yaml"
    recipe.write_text((__import__("pathlib").Path("recipes/fraud_signals.yaml")).read_text())
    with pytest.raises(ValueError, match=r"training.distribution.*only strategy 'tpu' reads it.*'mirrored'"):
        load_recipe(recipe, ["training.distribution.strategy=mirrored", "training.distribution.tpu=local"])
    loaded = load_recipe(recipe, ["training.distribution.strategy=tpu", "training.distribution.tpu=grpc://10.0.0.2:8470"])
    assert (loaded.training.distribution.strategy, loaded.training.distribution.tpu) == ("tpu", "grpc://10.0.0.2:8470")
    assert load_recipe(recipe, ["training.distribution.strategy=auto"]).training.distribution.strategy == "auto"
    assert "tpu" not in load_recipe(recipe).model_dump()["training"]["distribution"]
