"""The shared workload of the data benchmarks: synthetic fraud CSV and its recipe."""

from __future__ import annotations

import glob
from pathlib import Path

from mtl_tf.recipe import load_recipe

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "fraud_signals.yaml"


def fraud_recipe(workdir: Path, rows: int, files: int = 4, seed: int = 0):
    """Synthesises ``rows`` raw rows under ``workdir`` and returns (recipe, csv files)."""
    from mtl_tf.data.synth import synthesize

    raw = workdir / "raw"
    if not raw.is_dir() or not list(raw.glob("*.csv")):
        synthesize("fraud_signals", rows=rows, out_dir=raw, seed=seed, files=files)
    recipe = load_recipe(RECIPE, [f"data.source.path={raw}/*.csv", f"data.output_dir={workdir}/dataset",
                                  f"output_dir={workdir}/run"])
    return recipe, sorted(glob.glob(str(raw / "*.csv")))
