"""A tiny tabular recipe trained and registered twice with `mtl run`, for the serving tests.

Rows (deterministic): ``amount`` (numeric, min 0, sometimes missing), ``channel``
(categorical, sometimes missing), ``score`` (numeric) and ``recent`` (a sequence of 3 events);
``fraud`` = amount > 50 and ``churn`` = score > 0.5 (every fifth row unlabelled). Version 1
trains 2 epochs, version 2 one epoch with another seed, so the two exports differ.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml
from click.testing import CliRunner

NAME = "tiny_serve"
TASKS = ("fraud", "churn")
LABEL_COLUMNS = ("fraud", "churn")
HEADER = ["id", "amount", "channel", "score", "recent", "fraud", "churn"]


@dataclass(frozen=True)
class Registered:
    """Where the registered model lives: its tracking URI, work folder, recipe and raw CSV."""

    root: Path
    uri: str
    recipe: Path
    csv: Path
    dataset: Path

    def client(self):
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)

    def set_aliases(self, **aliases: int | None) -> None:
        """Points each alias at a version (None deletes it)."""
        client = self.client()
        for alias, version in aliases.items():
            if version is None:
                with contextlib.suppress(Exception):
                    client.delete_registered_model_alias(NAME, alias)
            else:
                client.set_registered_model_alias(NAME, alias, str(version))


def raw_rows(n: int = 240, seed: int = 0) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        amount = abs(rng.normal(50, 25))
        score = rng.random()
        channel = str(rng.choice(["web", "app", "pos"]))
        recent = "|".join(f"{abs(v):.2f}" for v in rng.normal(40, 10, size=int(rng.integers(0, 5))))
        rows.append([f"c{i}", "" if i % 11 == 0 else f"{amount:.3f}", "" if i % 13 == 0 else channel, f"{score:.4f}",
                     recent, str(int(amount > 50)), "" if i % 5 == 0 else str(int(score > 0.5))])
    # Rows the pipeline rejects: a negative amount (min 0), a score that is not a number.
    rows += [["bad1", "-3", "web", "0.5", "", "0", "1"], ["bad2", "10", "app", "abc", "1|2", "1", "0"]]
    return rows


def recipe_mapping() -> dict:
    return {
        "name": NAME, "output_dir": f"artifacts/{NAME}",
        "data": {"source": {"path": "raw/rows.csv"}, "output_dir": f"artifacts/{NAME}/dataset", "shards": 1,
                 "split": {"key": "id", "train": 0.6, "validation": 0.2, "test": 0.2, "seed": 1},
                 "features": [{"name": "amount", "kind": "numeric", "min": 0},
                              {"name": "channel", "kind": "categorical"},
                              {"name": "score", "kind": "numeric"},
                              {"name": "recent", "kind": "sequence", "length": 3}]},
        "tasks": [{"name": "fraud", "type": "binary", "label": "fraud"},
                  {"name": "churn", "type": "binary", "label": "churn"}],
        "model": {"architecture": "hps", "trunk": {"name": "mlp", "units": [8]}, "tower": {"name": "mlp", "units": [4]}},
        "training": {"epochs": 2, "batch_size": 32},
        "analysis": {"conflict_batches": 0, "affinity_batches": 0},
        "tracking": {"register_as": NAME},
        "export": {"skew_examples": 16},
    }


def train_and_register(root: Path) -> Registered:
    """Writes the data and recipe under ``root`` and runs `mtl run` twice (versions 1 and 2)."""
    from mtl_tf.cli.main import cli

    (root / "raw").mkdir(parents=True, exist_ok=True)
    csv = root / "raw" / "rows.csv"
    csv.write_text(",".join(HEADER) + "\n" + "".join(",".join(r) + "\n" for r in raw_rows()))
    recipe = root / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(recipe_mapping()))
    uri = f"sqlite:///{root / 'mlflow.db'}"
    runs = [["run", str(recipe), "--tracking-uri", uri, "-q"],
            ["run", str(recipe), "--tracking-uri", uri, "-q", "--skip-preprocess",
             "--set", "training.epochs=1", "--set", "training.seed=7"]]
    with _cwd(root):
        for args in runs:
            result = CliRunner().invoke(cli, args, catch_exceptions=False)
            assert result.exit_code == 0, result.output
    return Registered(root=root, uri=uri, recipe=recipe, csv=csv, dataset=root / "artifacts" / NAME / "dataset")


@contextlib.contextmanager
def _cwd(path: Path):
    before = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)
