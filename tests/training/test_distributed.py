"""The loop under MirroredStrategy and MultiWorkerMirroredStrategy equals a single-replica run
with the same global batch, for equal weighting and for per-task gradient methods (their
per-task gradients are summed across replicas before aggregation). Each run is a fresh
process: devices and clusters are fixed before TensorFlow initialises; one cluster start
trains every method."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).with_name("distributed_worker.py")
REPO = Path(__file__).resolve().parents[2]


def _env(**extra):
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    env.pop("TF_CONFIG", None)
    env.update(extra)
    return env


def _run(args, env, timeout=300):
    done = subprocess.run([sys.executable, str(SCRIPT), *args], env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]


def _weights(path, prefix):
    data = np.load(path)
    keys = [k for k in data.files if k.startswith(prefix) and k[len(prefix):].isdigit()]
    return [data[k] for k in sorted(keys, key=lambda k: int(k[len(prefix):]))]


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
def test_mirrored_over_two_devices_equals_the_default_strategy(tmp_path):
    out = tmp_path / "mirrored.npz"
    _run(["mirrored", str(out)], _env())
    data = np.load(out)
    for method in ("ew", "pcgrad"):
        mirrored, default = _weights(out, f"mirrored_{method}_"), _weights(out, f"default_{method}_")
        assert len(mirrored) == len(default) > 0
        for got, want in zip(mirrored, default):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, err_msg=method)
        assert data[f"mirrored_{method}_val_auc"][0] == pytest.approx(data[f"default_{method}_val_auc"][0], abs=1e-4)


def _two_datasets(root):
    """The tiny main dataset (tasks fraud, default_risk) and a side one whose only task is side_fraud."""
    from mtl_tf.data.spec import TaskSpec
    from tests.helpers.tiny_dataset import make_tiny_dataset

    make_tiny_dataset(root / "main", rows=64, seed=0)
    side = make_tiny_dataset(root / "side", rows=32, seed=1)
    task = TaskSpec(name="side_fraud", type="binary", label_key="is_fraud", dtype="float32",
                    labelled={"train": 24, "test": 8})
    side.model_copy(update={"tasks": [task]}).write(root / "side" / "dataset")
    return root


@pytest.mark.slow
def test_two_workers_end_identical_and_equal_to_one_process(tmp_path):
    """Also for two datasets mixed round robin, read inside the compiled loop 3 steps a call."""
    datasets = str(_two_datasets(tmp_path / "datasets"))
    single = tmp_path / "single.npz"
    _run(["single", str(single), "", datasets], _env())
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    ckpt = tmp_path / "ckpt"
    procs = []
    try:
        for index in range(2):
            config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
            procs.append(subprocess.Popen(
                [sys.executable, str(SCRIPT), "multi_worker", str(tmp_path / f"w{index}.npz"), str(ckpt), datasets],
                env=_env(TF_CONFIG=json.dumps(config)), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                text=True))
        for proc in procs:
            _, err = proc.communicate(timeout=400)
            assert proc.returncode == 0, err[-3000:]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for method in ("ew", "pcgrad", "mgda", "mgda_ub", "mixed"):
        w0, w1 = _weights(tmp_path / "w0.npz", f"{method}_"), _weights(tmp_path / "w1.npz", f"{method}_")
        reference = _weights(single, f"{method}_")
        assert len(w0) == len(reference) > 0
        for a, b, ref in zip(w0, w1, reference):
            np.testing.assert_array_equal(a, b, err_msg=method)
            np.testing.assert_allclose(a, ref, rtol=0, atol=1e-5, err_msg=method)
    baseline, pcgrad = _weights(single, "ew_"), _weights(single, "pcgrad_")
    assert any(not np.allclose(a, b) for a, b in zip(baseline, pcgrad))  # the methods did differ
    assert (ckpt / "ckpt-2.index").exists()
    assert not any(p.name.startswith(".scratch") for p in ckpt.iterdir())
