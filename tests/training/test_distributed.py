"""The loop under MirroredStrategy and MultiWorkerMirroredStrategy equals a single-replica run
with the same global batch, for equal weighting and for per-task gradient methods (their
per-task gradients are summed across replicas before aggregation). Each run is a fresh
process: devices and clusters are fixed before TensorFlow initialises; one cluster start
trains every method. Two workers killed mid-epoch and restarted with resume end as an
uninterrupted run does."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
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
    for method in ("pcgrad", "mgda_ub", "mixed"):
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


def _start_workers(args, ports, tmp_path, tag, extra_env=None):
    """Two worker processes of one cluster on 127.0.0.1; their stdout goes to files."""
    workers = [f"127.0.0.1:{port}" for port in ports]
    procs = []
    try:
        for index in range(2):
            config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
            with open(tmp_path / f"{tag}-w{index}.log", "w") as out:
                procs.append(subprocess.Popen(
                    [sys.executable, str(SCRIPT), *args(index)], stdout=out, stderr=subprocess.STDOUT,
                    env=_env(TF_CONFIG=json.dumps(config), **(extra_env or {}))))
    except BaseException:
        _stop(procs)
        raise
    return procs


def _stop(procs):
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def _wait_for(condition, procs, timeout, what):
    deadline = time.monotonic() + timeout
    while not condition():
        dead = [p.args[-3:] for p in procs if p.poll() is not None]
        assert not dead, f"a worker ended while waiting for {what}: {dead}"
        assert time.monotonic() < deadline, f"no {what} after {timeout}s"
        time.sleep(0.02)


def _step_checkpoints_after(folder, step):
    """Step checkpoints numbered past global step ``step`` (a step checkpoint is numbered by
    the optimizer's steps)."""
    return [p for p in (folder / "steps").glob("step-*.index") if int(p.name[len("step-"):-len(".index")]) > step]


@pytest.mark.slow
def test_two_workers_killed_mid_epoch_resume_to_the_uninterrupted_weights(tmp_path):
    """A worker SIGKILLed in epoch 2, the other killed after it (as a Kubernetes Job restarts
    its whole group), both restarted with resume on the shared checkpoint folder: the run
    continues from the last step checkpoint of epoch 2 and ends with the weights of an
    uninterrupted single-process run with the same global batch.

    Tolerance: 1e-5 absolute, the one of the equality test above. The resume itself is exact
    (the restored variables are the saved floats, and the replay reads the same batches
    again), but two workers sum half-batch gradients across replicas where one process sums
    the whole batch: the float rounding differs in the last bits. One batch trained twice
    or skipped moves the weights by about the learning rate (0.02), three orders more.

    Only the chief writes: the checkpoint folder holds the chief's files and no worker's
    scratch folder, and only the chief prints progress and the resume point. (The MLflow run,
    export and registration of ``mtl run`` are gated on the same ``is_chief`` in
    ``mtl_tf.runner.recipe_run``; this Trainer-level run has none.)
    """
    from distributed_worker import PAUSE_ENV, RESUMABLE, train_resumable

    steps = RESUMABLE["rows"] // RESUMABLE["batch_size"]  # per epoch
    ckpt = tmp_path / "ckpt"
    procs = []
    try:
        procs = _start_workers(lambda i: ["resumable", str(tmp_path / f"killed{i}.npz"), str(ckpt)],
                               _free_ports(2), tmp_path, "first", {PAUSE_ENV: "0.05"})
        # The reference trains here while the workers start (the default strategy, no pause).
        want, reference = train_resumable(None, tmp_path / "reference")
        _wait_for(lambda: _step_checkpoints_after(ckpt, steps), procs, 240, "a step checkpoint in epoch 2")
        procs[1].send_signal(signal.SIGKILL)
        procs[1].wait()
        try:  # the chief blocks in its next collective op, or fails there
            procs[0].wait(timeout=2)
        except subprocess.TimeoutExpired:
            procs[0].send_signal(signal.SIGKILL)
        _stop(procs)
        assert not (ckpt / "ckpt-2.index").exists(), "the kill landed after epoch 2 was committed"
        assert (ckpt / "ckpt-1.index").exists()

        procs = _start_workers(lambda i: ["resumable", str(tmp_path / f"w{i}.npz"), str(ckpt), "resume"],
                               _free_ports(2), tmp_path, "resumed")
        for proc in procs:
            proc.wait(timeout=240)
        logs = [(tmp_path / f"resumed-w{i}.log").read_text() for i in range(2)]
        assert [p.returncode for p in procs] == [0, 0], logs[0][-3000:] + logs[1][-3000:]
    finally:
        _stop(procs)

    resumed_from = re.search(r"Resuming from (\S+) after epoch 1 and (\d+) steps of epoch 2", logs[0])
    assert resumed_from, logs[0][-2000:]
    steps_done = int(resumed_from.group(2))
    assert 0 < steps_done < steps and steps_done % RESUMABLE["checkpoint_every_steps"] == 0
    assert Path(resumed_from.group(1)).parent == ckpt / "steps"
    assert "epoch 2/2:" in logs[0] and "epoch 1/2:" not in logs[0]  # epoch 1 was not trained again
    assert "Resuming" not in logs[1] and "epoch 2/2" not in logs[1]  # workers other than the chief print nothing

    w0, w1 = (_weights(tmp_path / f"w{i}.npz", "resumable_") for i in range(2))
    assert len(w0) == len(want) > 0
    for a, b, ref in zip(w0, w1, want):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(a, ref, rtol=0, atol=1e-5)
    assert list(np.load(tmp_path / "w0.npz")["resumable_epochs"]) == [1, 2] == [e["epoch"] for e in reference.epochs]
    assert (ckpt / "ckpt-2.index").exists()
    assert not any(p.name.startswith(".scratch") for p in ckpt.rglob("*"))
