"""Distribution strategies by name, as the recipe's ``training.distribution.strategy`` names them.

``auto`` picks what the machine has: ``multi_worker`` when ``TF_CONFIG`` names a cluster (a
pod of a multi-worker Job), else ``mirrored`` over every local GPU when there are several,
else ``default`` (one device: TensorFlow places the model on the GPU when there is one).

``tpu`` builds a ``TPUStrategy`` on a ``TPUClusterResolver``: ``training.distribution.tpu``
is ``local`` (the chips of the TPU VM the job runs on; the default), a TPU name, or
``grpc://host:8470``. TensorFlow 2.21 has no TPU build (``tensorflow-tpu`` stops at 2.20), so
it needs a TPU-enabled TensorFlow on a TPU host; anywhere else it stops with one line.
"""

from __future__ import annotations

import json
import os
import socket
from typing import Callable, Mapping
from urllib.parse import urlparse

import tensorflow as tf

from mtl_tf.errors import unknown_name_error

TPU_HINT = ("TensorFlow 2.21 has no TPU build (tensorflow-tpu stops at 2.20): TPUStrategy needs a TPU-enabled "
            "TensorFlow on a TPU host; here use strategy auto, mirrored, one_device or multi_worker")
# How long a grpc:// TPU address may take to accept a connection before it counts as unreachable
# (TensorFlow's own connect waits forever).
TPU_CONNECT_TIMEOUT_S = 10.0


def _default() -> tf.distribute.Strategy:
    return tf.distribute.get_strategy()


def _one_device() -> tf.distribute.Strategy:
    gpus = tf.config.list_logical_devices("GPU")
    return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")


def _mirrored() -> tf.distribute.Strategy:
    return tf.distribute.MirroredStrategy()


def tf_config_cluster(environ: Mapping[str, str] | None = None) -> dict | None:
    """The parsed ``TF_CONFIG`` of ``environ`` (default ``os.environ``), or None when unset.

    Raises:
        ValueError: TF_CONFIG is not JSON or lacks its ``cluster`` and ``task`` keys.
    """
    raw = (os.environ if environ is None else environ).get("TF_CONFIG")
    if not raw:
        return None
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as err:
        raise ValueError(f"TF_CONFIG is not valid JSON ({err}); received {raw!r}") from err
    if not isinstance(config, dict) or "cluster" not in config or "task" not in config:
        raise ValueError(f"TF_CONFIG needs 'cluster' and 'task' keys; received {raw!r}")
    return config


def _multi_worker() -> tf.distribute.Strategy:
    if tf_config_cluster() is None:
        raise ValueError("strategy 'multi_worker' reads the cluster from the TF_CONFIG environment "
                         "variable, which is not set; set it to JSON such as "
                         '{"cluster": {"worker": ["host1:port", "host2:port"]}, '
                         '"task": {"type": "worker", "index": 0}}')
    return tf.distribute.MultiWorkerMirroredStrategy()


def auto_strategy_name(environ: Mapping[str, str] | None = None, gpus: int | None = None) -> str:
    """What ``auto`` resolves to: ``multi_worker`` with a TF_CONFIG, ``mirrored`` with
    several GPUs, else ``default``.

    Args:
        environ: the environment (default ``os.environ``).
        gpus: the number of local GPUs (default: the ones TensorFlow sees).
    """
    if tf_config_cluster(environ) is not None:
        return "multi_worker"
    if gpus is None:
        gpus = len(tf.config.list_physical_devices("GPU"))
    return "mirrored" if gpus > 1 else "default"


def _auto() -> tf.distribute.Strategy:
    return STRATEGIES[auto_strategy_name()]()


def _tpu(address: str | None = None) -> tf.distribute.Strategy:
    """TPUStrategy on the TPU at ``address`` (``local`` by default); one ValueError line when
    there is none."""
    address = address or "local"
    _check_reachable(address)
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=address)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, OSError, RuntimeError, tf.errors.OpError) as err:
        raise ValueError(f"strategy 'tpu' found no TPU at {address!r} ({_first_sentence(err)}); {TPU_HINT}") from None
    return tf.distribute.TPUStrategy(resolver)


def _check_reachable(address: str) -> None:
    """A grpc:// address must accept a TCP connection: TensorFlow would wait for it forever."""
    if not address.startswith("grpc://"):
        return
    parsed = urlparse(address)
    try:
        with socket.create_connection((parsed.hostname, parsed.port or 8470), timeout=TPU_CONNECT_TIMEOUT_S):
            pass
    except OSError as err:
        raise ValueError(f"strategy 'tpu' cannot reach the TPU at {address!r} ({err}); {TPU_HINT}") from None


def _first_sentence(err: Exception) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return text.split(". ")[0].rstrip(".")


STRATEGIES: dict[str, Callable[..., tf.distribute.Strategy]] = {
    "default": _default,
    "auto": _auto,
    "one_device": _one_device,
    "mirrored": _mirrored,
    "multi_worker": _multi_worker,
    "tpu": _tpu,
}


def make_strategy(name: str = "default", tpu: str | None = None) -> tf.distribute.Strategy:
    """A tf.distribute strategy by name.

    Args:
        name: ``"default"`` (whatever strategy is current, no distribution by default),
            ``"auto"`` (see the module docstring), ``"one_device"`` (the first GPU, else the
            CPU), ``"mirrored"`` (every local GPU, else the CPU), ``"multi_worker"``
            (MultiWorkerMirroredStrategy over the cluster in ``TF_CONFIG``) or ``"tpu"``.
        tpu: the TPU of ``"tpu"``: ``"local"`` (default), a TPU name or ``grpc://host:port``.

    Returns:
        The strategy. Build the model, optimizer and metrics inside its ``scope()``.

    Raises:
        ValueError: an unknown name, ``multi_worker`` without TF_CONFIG, ``tpu`` without a TPU.
    """
    if name not in STRATEGIES:
        raise unknown_name_error("distribution strategy", name, STRATEGIES, "training.distribution.strategy")
    if tpu is not None and name != "tpu":
        raise ValueError(f"only strategy 'tpu' takes a TPU address; received tpu={tpu!r} with strategy {name!r}")
    return _tpu(tpu) if name == "tpu" else STRATEGIES[name]()


def recipe_strategy(distribution) -> tf.distribute.Strategy:
    """The strategy of a recipe's ``training.distribution`` section."""
    return make_strategy(distribution.strategy, distribution.tpu)


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True on the one worker that writes shared files (always true without a cluster)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


def in_cluster(strategy: tf.distribute.Strategy) -> bool:
    """True when the strategy trains over several worker processes (MultiWorkerMirroredStrategy)."""
    return bool(getattr(strategy.extended, "_in_multi_worker_mode", lambda: False)())


def worker_id(strategy: tf.distribute.Strategy) -> str:
    """``"<type>-<index>"`` of this process in the cluster, ``"local"`` without one."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return "local"
    return f"{resolver.task_type}-{resolver.task_id}"
