"""Distribution strategies by name, as the recipe's ``training.distribution.strategy`` names them."""

from __future__ import annotations

import json
import os
from typing import Callable

import tensorflow as tf

from mtl_tf.errors import unknown_name_error


def _default() -> tf.distribute.Strategy:
    return tf.distribute.get_strategy()


def _one_device() -> tf.distribute.Strategy:
    gpus = tf.config.list_logical_devices("GPU")
    return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")


def _mirrored() -> tf.distribute.Strategy:
    return tf.distribute.MirroredStrategy()


def _multi_worker() -> tf.distribute.Strategy:
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise ValueError("strategy 'multi_worker' reads the cluster from the TF_CONFIG environment "
                         "variable, which is not set; set it to JSON such as "
                         '{"cluster": {"worker": ["host1:port", "host2:port"]}, '
                         '"task": {"type": "worker", "index": 0}}')
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as err:
        raise ValueError(f"TF_CONFIG is not valid JSON ({err}); received {raw!r}") from err
    if not isinstance(config, dict) or "cluster" not in config or "task" not in config:
        raise ValueError(f"TF_CONFIG needs 'cluster' and 'task' keys; received {raw!r}")
    return tf.distribute.MultiWorkerMirroredStrategy()


STRATEGIES: dict[str, Callable[[], tf.distribute.Strategy]] = {
    "default": _default,
    "one_device": _one_device,
    "mirrored": _mirrored,
    "multi_worker": _multi_worker,
}


def make_strategy(name: str = "default") -> tf.distribute.Strategy:
    """A tf.distribute strategy by name.

    Args:
        name: ``"default"`` (whatever strategy is current, no distribution by default),
            ``"one_device"`` (the first GPU, else the CPU), ``"mirrored"`` (every local GPU,
            else the CPU) or ``"multi_worker"`` (MultiWorkerMirroredStrategy over the cluster
            in ``TF_CONFIG``).

    Returns:
        The strategy. Build the model, optimizer and metrics inside its ``scope()``.
    """
    if name not in STRATEGIES:
        raise unknown_name_error("distribution strategy", name, STRATEGIES, "training.distribution.strategy")
    return STRATEGIES[name]()


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True on the one worker that writes shared files (always true without a cluster)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


def worker_id(strategy: tf.distribute.Strategy) -> str:
    """``"<type>-<index>"`` of this process in the cluster, ``"local"`` without one."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return "local"
    return f"{resolver.task_type}-{resolver.task_id}"
