"""The medical recipes on real scans: per-finding AUC and calibration, Dice, per-patient scores,
against single-task baselines and the published figures SOURCE.md names.

For a recipe (``chestxray14_sample``, ``isic2017``, ``lgg_mri``) it runs the multi-task model end
to end with :func:`mtl_tf.runner.run_recipe` (train, evaluate on the test split, export and skew
check; nothing registered, tracking in a throwaway sqlite store) and, with ``--baselines``, one
single-task model per task with :func:`mtl_tf.runner.run_baselines` (the recipe's trunk, tower and
training settings; best epoch on validation). It writes ``bench/results/<recipe>.json``: each
task's test metrics, the per-finding section of the report (AUC, average precision, sensitivity
at the task's specificity, ECE per finding; Dice per class; scores per patient), trainable
parameters, seconds per epoch, delta_m against the baselines, and the published references with
whether they are comparable. It prints the tables of the README's "Medical imaging" section.

    python bench/real_medical.py chestxray14_sample --baselines
    python bench/real_medical.py isic2017 --baselines
    python bench/real_medical.py lgg_mri --baselines --set training.epochs=12
    python bench/real_medical.py lgg_mri --table          # print the tables of the stored results

Run it from the repository root. The recipes read ``../shared/data``; ``--data DIR`` points at
another folder holding the data sets.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from common import RESULTS, machine  # noqa: E402
from real_data import load_bench_recipe, recipe_path, throwaway_tracking  # noqa: E402

DATA_PREFIX = "../shared/data"

# What SOURCE.md (and ../shared/data/README.md) cite, and why our numbers are not the same measurement.
REFERENCES: dict[str, list[dict[str, Any]]] = {
    "chestxray14_sample": [
        {"source": "Wang et al., CVPR 2017 (ChestX-ray8/14)", "metric": "findings mean AUC", "value": 0.738,
         "comparable": False, "why": "full data set (112,120 images at 1024 px, official patient-wise split); "
                                    "here 1,000 images at 64 px re-split by patient, test 246 images"},
        {"source": "Rajpurkar et al. 2017 (CheXNet)", "metric": "findings mean AUC", "value": 0.841,
         "comparable": False, "why": "DenseNet-121 pretrained on ImageNet, full data set at 224 px"},
    ],
    "isic2017": [
        {"source": "ISIC 2017 challenge, Part 1 (Codella et al. 2018)", "metric": "lesion Jaccard (IoU)",
         "value": 0.765, "comparable": False,
         "why": "top entry on the official 600-image test set, mean per-image Jaccard at full resolution; "
                "here the official 150-image validation set at 128 px, pooled over pixels"},
        {"source": "ISIC 2017 challenge, Part 3", "metric": "melanoma AUC", "value": 0.87, "comparable": False,
         "why": "top entries on the 600-image test set, with ImageNet-pretrained networks and external data"},
        {"source": "ISIC 2017 challenge, Part 3", "metric": "seborrheic keratosis AUC", "value": 0.95,
         "comparable": False, "why": "as above"},
    ],
    "lgg_mri": [
        {"source": "Buda et al., Comput. Biol. Med. 2019", "metric": "tumour Dice", "value": 0.82,
         "comparable": False, "why": "mean Dice per volume, all 110 patients in cross-validation, 3 channels "
                                     "at 256 px; here FLAIR only at 128 px, 20 test patients, Dice pooled "
                                     "over the pixels of the split"},
    ],
}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe", help="recipe name under recipes/ (chestxray14_sample, isic2017, lgg_mri) "
                                       "or a YAML path")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="recipe override applied to every run, e.g. training.epochs=4")
    parser.add_argument("--baselines", action="store_true", help="also train the single-task baselines")
    parser.add_argument("--no-model", action="store_true", help="only the baselines (with --baselines)")
    parser.add_argument("--skip-preprocess", action="store_true", help="reuse the dataset already written")
    parser.add_argument("--data", default=None, help=f"the folder holding the data sets (default {DATA_PREFIX})")
    parser.add_argument("--table", action="store_true", help="print the tables of the stored results and stop")
    parser.add_argument("--verbose", type=int, default=0, help="1 shows a progress bar per epoch")
    return parser.parse_args(argv)



def data_overrides(path: Path, data: str | None) -> list[str]:
    """``data.source.path`` moved from ``../shared/data`` to ``data`` (when given)."""
    if data is None:
        return []
    from mtl_tf.recipe import load_recipe

    source = load_recipe(path, check=False).data.source
    moved = [p.replace(DATA_PREFIX, str(Path(data).resolve()), 1) for p in source.patterns]
    return [f"data.source.path={json.dumps(moved[0] if len(moved) == 1 else moved)}"]


def run_model(path: Path, overrides: Sequence[str], skip_preprocess: bool, uri: str, verbose: int) -> dict[str, Any]:
    """Trains, evaluates and exports the multi-task model; returns its results entry."""
    from mtl_tf.recipe import load_recipe
    from mtl_tf.runner import run_recipe

    base = load_recipe(path, overrides, check=False)
    recipe = load_recipe(path, [*overrides, f"output_dir=artifacts/bench/{base.name}/model"])
    start = time.perf_counter()
    result = run_recipe(recipe, recipe_path=str(path), tracking_uri=uri, register=False,
                        skip_preprocess=skip_preprocess, verbose=verbose, echo=lambda line: None)
    report = json.loads(result.report_path.with_name("report.json").read_text())
    training = report["training"]
    return {
        "architecture": recipe.model.architecture.as_dict(), "trunk": recipe.model.trunk.as_dict(),
        "decoder": recipe.model.decoder.as_dict(), "tower": recipe.model.tower.as_dict(),
        "test": _rounded(result.test_metrics), "findings": _compact(report.get("findings")),
        "trainable_parameters": report["parameters"]["trainable"],
        "epochs_run": training["epochs_run"], "best_epoch": training["best_epoch"],
        "seconds_per_epoch": round(training["seconds"] / max(training["epochs_run"], 1), 1),
        "seconds_total": round(time.perf_counter() - start, 1),
        "dataset": str(result.dataset_path),
    }


def run_single_tasks(path: Path, overrides: Sequence[str], skip_preprocess: bool, uri: str,
                     verbose: int) -> dict[str, Any]:
    """Trains one single-task model per task; returns the results file's baselines entry."""
    from mtl_tf.evaluation.baselines import Baselines, baselines_path
    from mtl_tf.recipe import load_recipe
    from mtl_tf.runner import run_baselines

    base = load_recipe(path, overrides, check=False)
    recipe = load_recipe(path, [*overrides, f"output_dir=artifacts/bench/{base.name}/baselines"])
    start = time.perf_counter()
    result = run_baselines(recipe, tracking_uri=uri, skip_preprocess=skip_preprocess, verbose=verbose,
                           echo=lambda line: None)
    stored = Baselines.read(baselines_path(recipe))
    return {"architecture": "hps, one model per task", "test": _rounded(result.test_metrics),
            "tasks": {name: {"findings": _compact(entry.get("findings")), "epochs_run": entry.get("epochs_run"),
                             "best_epoch": entry.get("best_epoch")} for name, entry in stored.tasks.items()},
            "seconds_total": round(time.perf_counter() - start, 1)}


def _rounded(metrics: dict[str, dict[str, float]]) -> dict[str, dict[str, float | None]]:
    return {task: {m: None if v != v else round(float(v), 4) for m, v in values.items()}
            for task, values in metrics.items()}


def _compact(section: Any) -> Any:
    """The findings section without reliability bins, numbers to 4 places."""
    if isinstance(section, dict):
        return {k: _compact(v) for k, v in section.items() if k != "reliability"}
    if isinstance(section, list):
        return [_compact(v) for v in section]
    if isinstance(section, float):
        return round(section, 4)
    return section


def add_delta_m(results: dict[str, Any], recipe) -> None:
    """delta_m (primary metrics, %) of the multi-task model against the stored baselines."""
    from mtl_tf.data.spec import DatasetSpec
    from mtl_tf.evaluation.delta_m import delta_m
    from mtl_tf.tasks import build_tasks

    model, baselines = results.get("model"), results.get("baselines")
    if not model or not baselines:
        return
    tasks = build_tasks(recipe.tasks, DatasetSpec.read(model["dataset"]))
    finite = {t: {m: v for m, v in values.items() if v is not None} for t, values in baselines["test"].items()}
    result = delta_m({t: {m: v for m, v in values.items() if v is not None} for t, values in model["test"].items()},
                     finite, tasks)
    model["delta_m_pct"] = None if result.primary is None else round(result.primary, 2)
    model["delta_m_per_task_pct"] = {task: round(changes[primary], 2) for task, changes in result.per_metric.items()
                                     for primary in [next(t.primary_metric for t in tasks if t.name == task)]
                                     if primary in changes}


def tables(results: dict[str, Any]) -> str:
    """The README tables: tasks against baselines, and per finding."""
    model, baselines = results.get("model") or {}, results.get("baselines") or {}
    primary = results["tasks"]
    lines = ["| model | " + " | ".join(f"{t} {m}" for t, m in primary.items())
             + " | delta_m | trainable params | s / epoch | epochs (best) |",
             "|" + " --- |" * (len(primary) + 5)]
    if baselines:
        lines.append("| single-task baselines | " + " | ".join(_cell(baselines["test"].get(t, {}).get(m))
                                                             for t, m in primary.items()) + " | 0 | | | |")
    if model:
        delta = model.get("delta_m_pct")
        lines.append(f"| {model['architecture']['name']} (multi-task) | "
                     + " | ".join(_cell(model["test"].get(t, {}).get(m)) for t, m in primary.items())
                     + f" | {'n/a' if delta is None else f'{delta:+.2f}%'} | {model['trainable_parameters']:,} | "
                       f"{model['seconds_per_epoch']} | {model['epochs_run']} ({model['best_epoch']}) |")
    lines.append("")
    findings = (model.get("findings") or {}).get("tasks", {})
    for task, entry in findings.items():
        if entry["type"] != "multilabel":
            continue
        single = ((baselines.get("tasks") or {}).get(task, {}).get("findings") or {}).get("tasks", {}).get(task, {})
        lines += [f"| {task} | positives (test) | AUC multi-task | AUC single-task | ECE multi-task |",
                  "| --- | --- | --- | --- | --- |"]
        for label, row in entry["classes"].items():
            alone = (single.get("classes") or {}).get(label, {})
            why = (row.get("undefined") or {}).get("auc")
            lines.append(f"| {label} | {row['positives']} | {'undefined' if why else _cell(row['auc'])} | "
                         f"{_cell(alone.get('auc'))} | {_cell(row['ece'])} |")
        lines.append(f"| **mean** | | **{_cell(entry['mean_auc'])}** | **{_cell(single.get('mean_auc'))}** | "
                     f"{_cell(entry['mean_ece'])} |")
        lines.append("")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    return "" if value is None else f"{value:.4f}"


def merge(name: str, recipe, model: dict | None, baselines: dict | None) -> dict[str, Any]:
    path = RESULTS / f"{name}.json"
    old = json.loads(path.read_text()) if path.is_file() else {}
    merged = {
        "benchmark": name, "recipe": f"recipes/{name}.yaml", "machine": machine(),
        "tasks": {t.name: t.primary_metric or _default_primary(t.type) for t in recipe.tasks},
        "training": {"epochs": recipe.training.epochs, "batch_size": recipe.training.batch_size,
                     "optimizer": recipe.training.optimizer.as_dict(),
                     "early_stopping": recipe.training.early_stopping.model_dump()
                     if recipe.training.early_stopping else None},
        "model": model or old.get("model"),
        "baselines": baselines or old.get("baselines"),
        "references": REFERENCES.get(name, []),
    }
    add_delta_m(merged, recipe)
    return merged


def _default_primary(kind: str) -> str:
    return {"segmentation": "miou", "multilabel": "auc", "binary": "auc"}.get(kind, "loss")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    os.chdir(ROOT)  # the recipes name their files relative to the repository root
    overrides = [*data_overrides(recipe_path(args.recipe), args.data), *args.overrides]
    path, recipe, error = load_bench_recipe(args.recipe, overrides)
    if error:
        print(error, file=sys.stderr)
        return 2
    stored = RESULTS / f"{recipe.name}.json"
    if args.table:
        print(tables(json.loads(stored.read_text())))
        return 0
    missing = [p for p in recipe.data.source.patterns if not Path(p).exists()]
    if missing:
        print(f"error: the real data is not here: {recipe.name} reads {', '.join(missing)} (relative to the "
              f"repository root); pass --data DIR, see ../shared/data/README.md", file=sys.stderr)
        return 2
    model = baselines = None
    with tempfile.TemporaryDirectory(prefix="mtl-bench-") as tmp:
        uri = throwaway_tracking(tmp, recipe.tracking.experiment or recipe.name)
        if not args.no_model:
            print(f"{recipe.name}: multi-task model ...", flush=True)
            model = run_model(path, overrides, args.skip_preprocess, uri, args.verbose)
            print(json.dumps(model["test"]), f"{model['seconds_per_epoch']} s/epoch", flush=True)
        if args.baselines:
            print(f"{recipe.name}: single-task baselines ...", flush=True)
            baselines = run_single_tasks(path, overrides, args.skip_preprocess or not args.no_model, uri,
                                         args.verbose)
            print(json.dumps(baselines["test"]), flush=True)
    results = merge(recipe.name, recipe, model, baselines)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stored.write_text(json.dumps(results, indent=2) + "\n")
    print(tables(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
