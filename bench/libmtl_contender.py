"""LibMTL on PyTorch as an optional contender for ``bench/method_step_time.py``.

Not part of mtl_tf and never imported by it: this script runs under a separate Python that has
PyTorch, SciPy and LibMTL 1.1.5 (from PyPI), for example a throwaway environment::

    python -m venv /tmp/libmtl-env
    /tmp/libmtl-env/bin/pip install torch numpy scipy
    /tmp/libmtl-env/bin/pip install --no-deps LibMTL==1.1.5
    python bench/method_step_time.py --libmtl /tmp/libmtl-env/bin/python

The workload is the one ``method_step_time.py`` gives the Trainer: input of width 256, a
shared MLP encoder 256 -> 512 -> 256 (ReLU), per task a 256 -> 64 (ReLU) -> 1 decoder and a
binary cross-entropy on its logit, batch 512, Adam at 1e-3, LibMTL's hard parameter sharing
(``HPS``) with its weighting classes (EW, PCGrad, CAGrad, MGDA, GradVac, IMTL, GradNorm, UW,
DWA, RLW) and their default arguments from ``LibMTL.config``. A step is what LibMTL's
``Trainer.train`` does for a batch: ``zero_grad``, forward, per-task losses,
``model.backward(losses, **weight_args)``, ``optimizer.step()``.

LibMTL 1.1.5 predates PyTorch 2, whose ``zero_grad`` sets gradients to ``None``; LibMTL then
writes into ``param.grad.data`` and fails. The one change made here keeps them as zeros
(``set_to_none=False``), as PyTorch 1 did. Its package ``__init__`` imports its model zoo,
which needs a torchvision API that no longer exists; only ``LibMTL.architecture`` and
``LibMTL.weighting`` are loaded here, so the package is entered without running that
``__init__``.

Protocol: one JSON request per line on stdin, one JSON answer per line on stdout, so the
caller can interleave LibMTL's rounds with its own:

    {"tasks": 3, "method": "pcgrad", "steps": 20}  ->  {"wall_s": ..., "cpu_s": ...}   (per step)

The first request for a (tasks, method) pair builds its model and runs five untimed steps.
Every step is timed as in LibMTL's third epoch (``epoch = 2``, a loss history of ones), past
the epochs in which GradNorm and DWA fall back to equal weights.
A pair LibMTL cannot run is answered ``{"error": "..."}`` (LibMTL 1.1.5's CAGrad, for one,
hard-codes three tasks in its dual objective).
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
import types

import numpy as np
import torch
import torch.nn as nn

WIDTH, BATCH = 256, 512
NAMES = {"ew": "EW", "pcgrad": "PCGrad", "cagrad": "CAGrad", "mgda": "MGDA", "gradvac": "GradVac",
         "imtl_g": "IMTL", "gradnorm": "GradNorm", "uncertainty": "UW", "dwa": "DWA", "rlw": "RLW"}
# LibMTL.config's defaults for the weightings that take arguments.
WEIGHT_ARGS = {"CAGrad": {"calpha": 0.5, "rescale": 1}, "MGDA": {"mgda_gn": "none"},
               "GradVac": {"beta": 0.5}, "GradNorm": {"alpha": 1.5}, "DWA": {"T": 2.0},
               "RLW": {"dist": "Normal"}}


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(WIDTH, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU())

    def forward(self, x):
        return self.layers(x)


def _libmtl_package() -> None:
    """Registers the ``LibMTL`` package without running its ``__init__`` (see the module docstring)."""
    if "LibMTL" in sys.modules:
        return
    spec = importlib.util.find_spec("LibMTL")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("LibMTL is not installed in this Python (pip install --no-deps LibMTL==1.1.5)")
    package = types.ModuleType("LibMTL")
    package.__path__ = list(spec.submodule_search_locations)
    sys.modules["LibMTL"] = package


def build(num_tasks: int, method: str):
    _libmtl_package()
    from LibMTL import weighting as weightings
    from LibMTL.architecture import HPS

    weighting = getattr(weightings, NAMES[method])
    task_names = [f"t{i}" for i in range(num_tasks)]

    class Model(HPS, weighting):
        def __init__(self):
            decoders = nn.ModuleDict({t: nn.Sequential(nn.Linear(256, 64), nn.ReLU(), nn.Linear(64, 1))
                                      for t in task_names})
            super().__init__(task_names, Encoder, decoders, rep_grad=False, multi_input=False,
                             device=torch.device("cpu"))
            self.init_param()
            # What LibMTL's Trainer keeps, as in its third epoch: GradNorm runs plain EW in epoch 0
            # and DWA in epochs 0 and 1, so earlier epochs would time EW under their names.
            self.epoch, self.train_loss_buffer = 2, np.ones([num_tasks, 100])

        def zero_grad_share_params(self):
            self.encoder.zero_grad(set_to_none=False)

    torch.manual_seed(0)
    model = Model()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(BATCH * 8, WIDTH)).astype("float32")
    y = (x @ rng.normal(size=(WIDTH, num_tasks)) > 0).astype("float32")
    batches = [(torch.from_numpy(x[i * BATCH:(i + 1) * BATCH]), torch.from_numpy(y[i * BATCH:(i + 1) * BATCH]))
               for i in range(8)]
    loss_fn = nn.BCEWithLogitsLoss()
    args = WEIGHT_ARGS.get(NAMES[method], {})
    position = [0]

    def step() -> None:
        features, labels = batches[position[0] % len(batches)]
        position[0] += 1
        model.train()
        optimizer.zero_grad(set_to_none=False)
        outputs = model(features)
        losses = torch.stack([loss_fn(outputs[t][:, 0], labels[:, i]) for i, t in enumerate(task_names)])
        model.backward(losses, **args)
        optimizer.step()

    for _ in range(5):
        step()
    return step


def main() -> None:
    torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else torch.get_num_threads())
    steps_by_key = {}
    for line in sys.stdin:
        request = json.loads(line)
        key = (request["tasks"], request["method"])
        if key not in steps_by_key:
            try:
                steps_by_key[key] = build(*key)
            except Exception as error:  # noqa: BLE001 -- reported to the caller, which goes on without it
                print(json.dumps({"error": f"{type(error).__name__}: {error}"}), flush=True)
                continue
        step, steps = steps_by_key[key], request["steps"]
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(steps):
            step()
        answer = {"wall_s": (time.perf_counter() - wall) / steps, "cpu_s": (time.process_time() - cpu) / steps}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
