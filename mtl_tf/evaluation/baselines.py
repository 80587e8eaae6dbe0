"""Single-task baselines of a recipe: baselines.json in the recipe's output folder.

``mtl baseline RECIPE`` trains one model per task and writes what delta_m needs::

    {"recipe": ..., "dataset": {"root", "rows_in", "splits": {split: examples}},
     "settings": {"model.trunk": ..., ...},
     "tasks": {task: {"test": {metric: value}, "best_epoch", "run_id", "primary_metric", ...}}}

Every multi-task run of the recipe reads it and reports delta_m against it, provided the
baselines were trained on the same dataset (same splits and example counts).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

BASELINES_FILE = "baselines.json"


@dataclass
class Baselines:
    """The single-task results of one recipe.

    Attributes:
        recipe: the recipe name.
        dataset: ``{"root", "rows_in", "splits": {split: examples}}`` of the data they used.
        settings: the recipe settings they were trained with (to spot stale baselines).
        tasks: ``{task: {"test": {metric: value}, ...}}``.
        created: when the file was last written (ISO 8601, UTC).
    """

    recipe: str
    dataset: dict[str, Any]
    settings: dict[str, Any] = field(default_factory=dict)
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    created: str = ""

    @classmethod
    def read(cls, path: str | Path) -> "Baselines":
        """Reads baselines.json (a file, or the folder holding it)."""
        path = _file(path)
        if not path.is_file():
            raise FileNotFoundError(f"no single-task baselines at {path}; make them with `mtl baseline RECIPE`")
        try:
            raw = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{path} is not valid JSON ({err}); rerun `mtl baseline RECIPE`") from None
        unknown = sorted(set(raw) - set(cls.__dataclass_fields__))
        if unknown or "recipe" not in raw or "dataset" not in raw:
            raise ValueError(f"{path} is not a baselines file (keys {', '.join(sorted(raw))}); "
                             "rerun `mtl baseline RECIPE`")
        return cls(**raw)

    def write(self, path: str | Path) -> Path:
        """Writes baselines.json (into ``path`` when it is a folder); returns the file."""
        path = _file(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        path.write_text(json.dumps(asdict(self), indent=2, default=str) + "\n")
        return path

    def merge(self, other: "Baselines") -> "Baselines":
        """These baselines with ``other``'s tasks added or replaced (the dataset of ``other``)."""
        return Baselines(recipe=other.recipe, dataset=other.dataset, settings=other.settings,
                         tasks={**self.tasks, **other.tasks})

    def test_metrics(self) -> dict[str, dict[str, float]]:
        """``{task: {metric: value}}`` on the test split."""
        return {task: dict(entry.get("test", {})) for task, entry in self.tasks.items()}

    def mismatch(self, dataset: Mapping[str, Any]) -> str | None:
        """Why these baselines cannot be compared with a run on ``dataset``, or None."""
        mine, theirs = self.dataset.get("splits", {}), dict(dataset.get("splits", {}))
        if mine != theirs:
            return (f"the baselines were trained on splits {mine} but this run used {theirs}; "
                    "rerun `mtl baseline RECIPE` on the current data")
        return None

    def stale_settings(self, settings: Mapping[str, Any]) -> list[str]:
        """Recipe settings that differ between the baselines and a run (empty when none)."""
        return sorted(key for key in set(self.settings) | set(settings)
                      if str(self.settings.get(key)) != str(settings.get(key)))


def dataset_fingerprint(spec: Any) -> dict[str, Any]:
    """What identifies the data a model was trained and tested on."""
    return {"root": str(spec.root), "rows_in": spec.rows_in,
            "splits": {name: split.num_examples for name, split in spec.splits.items()}}


# The settings a baseline shares with the multi-task run (the methods that only exist for
# several tasks, weighting, gradient and sampling, are not among them).
SHARED_SETTINGS = ("model.trunk", "model.tower", "model.architecture", "training.optimizer", "training.epochs",
                   "training.batch_size", "training.early_stopping", "training.steps_per_epoch", "training.seed")


def shared_settings(recipe: Any) -> dict[str, Any]:
    """The recipe values of :data:`SHARED_SETTINGS`, as plain data."""
    values = {}
    for key in SHARED_SETTINGS:
        node: Any = recipe
        for part in key.split("."):
            node = getattr(node, part, None)
        values[key] = _plain(node)
    return values


def _plain(value: Any) -> Any:
    if hasattr(value, "as_dict"):
        return value.as_dict()
    if hasattr(value, "model_dump"):
        return value.model_dump()
    return value


def baselines_path(recipe: Any) -> Path:
    """Where a recipe's baselines live: ``<output_dir>/baselines.json``."""
    return Path(recipe.run_dir) / BASELINES_FILE


def compare(recipe: Any, spec: Any, tasks: Sequence[Any],
            test_metrics: Mapping[str, Mapping[str, float]]) -> dict[str, Any]:
    """The report's delta_m section for a multi-task run.

    Returns:
        ``{"available": True, "primary_pct", "all_metrics_pct", ...}`` when comparable
        baselines exist, else ``{"available": False, "reason", "how"}``.
    """
    from mtl_tf.evaluation.delta_m import delta_m

    path = baselines_path(recipe)
    how = "make them with `mtl baseline <recipe.yaml>`, then rerun"
    if not path.is_file():
        return {"available": False, "reason": f"no single-task baselines at {path}", "how": how}
    try:
        baselines = Baselines.read(path)
    except ValueError as err:
        return {"available": False, "reason": str(err), "how": how}
    problem = baselines.mismatch(dataset_fingerprint(spec))
    if problem:
        return {"available": False, "reason": problem, "how": how}
    result = delta_m(test_metrics, baselines.test_metrics(), tasks)
    if result.primary is None:
        why = [f"no baseline for {', '.join(result.missing)}"] if result.missing else []
        why += [f"baseline 0 for {', '.join(result.skipped)}"] if result.skipped else []
        return {"available": False, "reason": f"no task's primary metric can be compared with {path} "
                                              f"({'; '.join(why) or 'no common metric'})", "how": how}
    section = {"available": True, "baselines": str(path), **result.to_dict(),
               "stale_settings": baselines.stale_settings(shared_settings(recipe)),
               "best_epochs": {t: e.get("best_epoch") for t, e in baselines.tasks.items()}}
    section["metrics"] = result.metrics()
    return section


def _file(path: str | Path) -> Path:
    path = Path(path)
    return path / BASELINES_FILE if path.is_dir() or path.suffix != ".json" else path
