"""A tiny dataset on disk (GZIP TFRecords + dataset.json) for tests of every part.

Rows (deterministic for a seed):
  amount      numeric, ~10% missing; ``fraud`` = amount > 50 (0 when amount is missing)
  balance     numeric, never missing; ``default_risk`` = balance > 0.5, ~25% unlabelled
  channel     categorical; train vocabulary web/app/pos, "atm" is out of vocabulary, ~10% missing
  timestamp   int64 epoch seconds in 2024, ~5% missing

Splits: ``train`` (3/4 of the rows, 2 shards) and ``test`` (the rest, 1 shard). Statistics
are computed on train only, as the Beam pipeline does.

Usage:
    from tests.helpers.tiny_dataset import make_tiny_dataset, tiny_recipe
    spec = make_tiny_dataset(tmp_path, rows=64)
    recipe = parse_recipe(tiny_recipe(spec), check=False)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from mtl_tf.data.spec import DatasetSpec

VOCABULARY = ["web", "app", "pos"]
CHANNELS = VOCABULARY + ["atm"]
TASKS = {"fraud": "is_fraud", "default_risk": "defaulted"}
FEATURES = [("amount", "numeric"), ("balance", "numeric"), ("channel", "categorical"),
            ("timestamp", "timestamp")]
TRAIN_SHARDS = 2
_START_2024 = 1_704_067_200


def tiny_rows(rows: int = 64, seed: int = 0) -> dict[str, list[dict[str, Any]]]:
    """The rows of each split, as dicts; None marks a missing value or label."""
    rng = np.random.default_rng(seed)
    table = [_row(rng) for _ in range(rows)]
    cut = max(1, (rows * 3) // 4)
    return {"train": table[:cut], "test": table[cut:]}


def make_tiny_dataset(tmp_path: str | Path, rows: int = 64, seed: int = 0) -> DatasetSpec:
    """Writes the tiny dataset under ``tmp_path/dataset`` and reads its dataset.json back."""
    folder = Path(tmp_path) / "dataset"
    folder.mkdir(parents=True, exist_ok=True)
    splits = tiny_rows(rows, seed)
    split_specs = {}
    for split, table in splits.items():
        shards = TRAIN_SHARDS if split == "train" else 1
        for shard in range(shards):
            _write(folder / f"{split}-{shard:05d}-of-{shards:05d}.tfrecord.gz", table[shard::shards])
        split_specs[split] = {"pattern": f"{split}-*.tfrecord.gz", "num_examples": len(table),
                              "num_shards": shards}
    spec = {
        "name": "tiny", "created": "2024-01-01T00:00:00Z", "rows_in": rows,
        "features": _feature_specs(splits["train"]), "tasks": _task_specs(splits),
        "splits": split_specs,
    }
    DatasetSpec.model_validate(spec).write(folder)
    return DatasetSpec.read(folder)


def tiny_recipe(spec: DatasetSpec, **model: Any) -> dict[str, Any]:
    """A recipe mapping for the tiny dataset (tiny trunk and towers unless ``model`` says)."""
    return {
        "name": "tiny",
        "data": {"source": {"path": "unused/*.csv"}, "output_dir": spec.root or ".",
                 "split": {"key": "id", "train": 0.75, "validation": 0.0, "test": 0.25},
                 "features": [{"name": name, "kind": kind} for name, kind in FEATURES]},
        "tasks": [{"name": task, "type": "binary", "label": key} for task, key in TASKS.items()],
        "model": {"architecture": "hps", "trunk": {"name": "mlp", "units": [8]},
                  "tower": {"name": "mlp", "units": [4]}, **model},
    }


def _row(rng: np.random.Generator) -> dict[str, Any]:
    amount = float(rng.normal(50.0, 30.0)) if rng.random() > 0.1 else None
    balance = float(rng.random())
    channel = str(rng.choice(CHANNELS)) if rng.random() > 0.1 else None
    timestamp = _START_2024 + int(rng.integers(0, 365 * 86_400)) if rng.random() > 0.05 else None
    fraud = float(amount is not None and amount > 50.0)
    default = float(balance > 0.5) if rng.random() > 0.25 else None
    return {"amount": amount, "balance": balance, "channel": channel, "timestamp": timestamp,
            "is_fraud": fraud, "defaulted": default}


def _write(path: Path, table: list[dict[str, Any]]) -> None:
    options = tf.io.TFRecordOptions(compression_type="GZIP")
    with tf.io.TFRecordWriter(str(path), options) as writer:
        for row in table:
            writer.write(_example(row).SerializeToString())


def _example(row: dict[str, Any]) -> tf.train.Example:
    feature = {}
    for key in ("amount", "balance", "is_fraud", "defaulted"):
        if row[key] is not None:
            feature[key] = tf.train.Feature(float_list=tf.train.FloatList(value=[row[key]]))
    if row["channel"] is not None:
        feature["channel"] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[row["channel"].encode()]))
    if row["timestamp"] is not None:
        feature["timestamp"] = tf.train.Feature(int64_list=tf.train.Int64List(value=[row["timestamp"]]))
    return tf.train.Example(features=tf.train.Features(feature=feature))


def _numeric_stats(values: list[float | None]) -> dict[str, Any]:
    present = np.array([v for v in values if v is not None], dtype=np.float64)
    return {"count": len(present), "missing": len(values) - len(present),
            "mean": float(present.mean()), "variance": float(present.var()),
            "min": float(present.min()), "max": float(present.max())}


def _feature_specs(train: list[dict[str, Any]]) -> list[dict[str, Any]]:
    channels = [r["channel"] for r in train if r["channel"] is not None]
    stamps = [r["timestamp"] for r in train]
    return [
        {"name": "amount", "kind": "numeric", "dtype": "float32",
         "stats": _numeric_stats([r["amount"] for r in train])},
        {"name": "balance", "kind": "numeric", "dtype": "float32",
         "stats": _numeric_stats([r["balance"] for r in train])},
        {"name": "channel", "kind": "categorical", "dtype": "string",
         "stats": {"count": len(channels), "missing": len(train) - len(channels),
                   "unique": len(set(channels)), "oov_buckets": 2,
                   "oov_count": sum(c not in VOCABULARY for c in channels),
                   "vocabulary": [{"value": v, "count": channels.count(v)} for v in VOCABULARY]}},
        {"name": "timestamp", "kind": "timestamp", "dtype": "int64",
         "stats": _numeric_stats([float(s) if s is not None else None for s in stamps])},
    ]


def _task_specs(splits: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    specs = []
    for task, key in TASKS.items():
        labelled = {s: sum(r[key] is not None for r in t) for s, t in splits.items()}
        positives = {s: sum(r[key] == 1.0 for r in t) for s, t in splits.items()}
        specs.append({"name": task, "type": "binary", "label_key": key, "dtype": "float32",
                      "labelled": labelled, "positives": positives})
    return specs

