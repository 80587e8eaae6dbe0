"""A tiny recipe with every feature kind and task type, for the pipeline tests."""

import csv
from pathlib import Path

from mtl_tf.recipe.loader import parse_recipe

HEADER = ["user", "amount", "score", "color", "when", "is_fraud", "kind", "tags", "spend"]


def tiny_recipe(source: str = "raw/*.csv", out: str = "out", **split):
    raw = {
        "name": "tiny",
        "data": {
            "source": {"path": source},
            "output_dir": out,
            "shards": 2,
            "split": {"key": "user", "train": 0.6, "validation": 0.2, "test": 0.2, "seed": 5, **split},
            "features": [
                {"name": "amount", "kind": "numeric", "min": 0, "max": 1000, "required": True},
                {"name": "score", "kind": "numeric"},
                {"name": "color", "kind": "categorical", "top_k": 2},
                {"name": "when", "kind": "timestamp"},
            ],
        },
        "tasks": [
            {"name": "fraud", "type": "binary", "label": "is_fraud"},
            {"name": "kind", "type": "multiclass", "label": "kind", "classes": ["a", "b", "c"]},
            {"name": "tags", "type": "multilabel", "label": "tags", "classes": ["x", "y"]},
            {"name": "spend", "type": "regression", "label": "spend"},
        ],
    }
    return parse_recipe(raw, check=False)


def fraud_recipe(source: str, out: str, shards: int = 2):
    """The shipped fraud_signals recipe pointed at test folders."""
    import yaml

    raw = yaml.safe_load(Path("recipes/fraud_signals.yaml").read_text())
    raw["data"]["source"]["path"] = source
    raw["data"]["output_dir"] = out
    raw["data"]["shards"] = shards
    return parse_recipe(raw, check=False)


def write_csv(path: Path, header, rows) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path
