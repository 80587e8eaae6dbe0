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
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

BASELINES_FILE = "baselines.json"

# A baseline at or below these is no baseline: delta_m, a relative change, divides by it.
CHANCE_AUC = 0.55
# A baseline that trained this few epochs, or was best at its first, probably never learned.
FEW_EPOCHS = 2


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
        why += [f"baseline 0 or undefined for {', '.join(result.skipped)}"] if result.skipped else []
        return {"available": False, "reason": f"no task's primary metric can be compared with {path} "
                                              f"({'; '.join(why) or 'no common metric'})", "how": how}
    section = {"available": True, "baselines": str(path), **result.to_dict(),
               "per_task_pct": {task: row["relative_pct"] for task, row in result.per_task.items()},
               "baseline_warnings": baseline_warnings(baselines, tasks, spec),
               "stale_settings": baselines.stale_settings(shared_settings(recipe)),
               "best_epochs": {t: e.get("best_epoch") for t, e in baselines.tasks.items()}}
    section["metrics"] = result.metrics()
    return section


def baseline_warnings(baselines: Baselines, tasks: Sequence[Any], spec: Any = None) -> dict[str, list[str]]:
    """Why a task's baseline may not be worth comparing with: ``{task: [reason, ...]}``.

    A baseline whose primary metric is at chance level on the test split (:func:`chance_level`),
    or that trained at most :data:`FEW_EPOCHS` epochs or was best at its first, makes delta_m
    large without the multi-task model being good.
    """
    found = {}
    for task in tasks:
        entry = baselines.tasks.get(task.name)
        if not entry:
            continue
        notes = []
        metric = entry.get("primary_metric") or task.primary_metric
        value = entry.get("test", {}).get(metric)
        chance = chance_level(task, metric, _task_spec(spec, task.name))
        if chance is not None and value is not None and math.isfinite(value) and _at_chance(task, metric, value,
                                                                                            chance[0]):
            notes.append(f"its {metric} {value:.4f} is at chance level ({chance[1]})")
        ran, best = entry.get("epochs_run"), entry.get("best_epoch")
        stopped = entry.get("stopped_reason") or "completed"
        if ran is not None and ran <= FEW_EPOCHS:
            notes.append(f"it trained for only {ran} epoch(s)")
        elif best is not None and best <= 1:
            notes.append(f"its best validation epoch was epoch {best} of {ran} ({stopped})")
        if notes:
            found[task.name] = notes
    return found


def chance_level(task: Any, metric: str, task_spec: Any = None) -> tuple[float, str] | None:
    """(threshold, how it was set) at or below which ``metric`` is chance level, or None when unknown.

    ``auc`` (binary, multilabel): :data:`CHANCE_AUC`; ``accuracy`` (binary, multiclass): the
    majority-class rate of the test split, from dataset.json's label counts; ``pr_auc``
    (binary): the test split's positive rate; ``rmse`` (regression, lower is better: at
    chance at or above it): the rmse of predicting the train mean on the test split,
    ``sqrt(std_test^2 + (mean_test - mean_train)^2)`` from dataset.json's label statistics.
    """
    kind = getattr(task, "registered_type", None)
    if metric == "auc" and kind in ("binary", "multilabel"):
        return CHANCE_AUC, f"<= {CHANCE_AUC:g}; 0.5 is a coin flip"
    if metric == "rmse" and kind == "regression":
        return _mean_prediction_rmse(task_spec)
    counts = _test_counts(task_spec)
    if counts is None:
        return None
    labelled, positives = counts
    if metric == "accuracy" and kind == "binary" and isinstance(positives, int):
        majority = max(positives, labelled - positives) / labelled
        return majority, f"<= {majority:.4f}, the majority class's share of the test rows"
    if metric == "accuracy" and kind == "multiclass" and isinstance(positives, list) and positives:
        majority = max(positives) / labelled
        return majority, f"<= {majority:.4f}, the majority class's share of the test rows"
    if metric == "pr_auc" and kind == "binary" and isinstance(positives, int):
        rate = positives / labelled
        return rate, f"<= {rate:.4f}, the positive rate of the test rows"
    return None


def _at_chance(task: Any, metric: str, value: float, threshold: float) -> bool:
    higher = task.higher_is_better(metric) if hasattr(task, "higher_is_better") else True
    return value <= threshold if higher else value >= threshold


def _mean_prediction_rmse(task_spec: Any) -> tuple[float, str] | None:
    """The test rmse of always predicting the train mean, from a regression task's label statistics."""
    stats = getattr(task_spec, "stats", None)
    split = getattr(stats, "split", None)
    train, test = (split("train"), split("test")) if callable(split) else (None, None)
    if train is None or test is None or train.mean is None or test.mean is None or test.std is None:
        return None
    rmse = math.sqrt(test.std ** 2 + (test.mean - train.mean) ** 2)
    return rmse, f">= {rmse:.4g}, the rmse of predicting the train mean on the test rows"


def _task_spec(spec: Any, task: str) -> Any:
    try:
        return None if spec is None else spec.task(task)
    except (KeyError, AttributeError):
        return None


def _test_counts(task_spec: Any) -> tuple[int, Any] | None:
    if task_spec is None:
        return None
    labelled = (getattr(task_spec, "labelled", None) or {}).get("test", 0)
    positives = (getattr(task_spec, "positives", None) or {}).get("test")
    return (labelled, positives) if labelled and positives is not None else None


def _file(path: str | Path) -> Path:
    path = Path(path)
    return path / BASELINES_FILE if path.is_dir() or path.suffix != ".json" else path
