"""Architectures compared on a real-data recipe: test metric per task, parameters, time per epoch.

For each architecture it runs the recipe end to end with :func:`mtl_tf.runner.run_recipe`
(train, evaluate on the test split, export and skew check; nothing registered, tracking in a
throwaway sqlite store). The Beam preprocessing runs once, before the first architecture;
the others reuse its dataset. Results are merged into ``bench/results/<recipe>.json`` (one
entry per architecture, so architectures can be run at different times) and printed as a
markdown table.

    python bench/real_data.py census_income --arch hps mmoe ple cross_stitch etr_nlp
    python bench/real_data.py bank_marketing --arch hps mmoe --set training.epochs=4
    python bench/real_data.py census_income --baselines

``--baselines`` trains the single-task baselines once (one hps model per task, the recipe's
trunk, tower and training settings, best epoch chosen on validation; :func:`run_baselines`)
and stores their test metrics in the same file; from then on the table carries delta_m of
every architecture against them, computed from the stored test metrics.

Run it from the repository root: the recipes read ``../shared/data``.
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

# Architecture options used in the comparison; each run also takes the recipe's trunk and tower.
ARCHITECTURES: dict[str, dict[str, Any]] = {
    "hps": {},
    "mmoe": {"experts": 8},
    "ple": {"task_experts": 1, "shared_experts": 2},
    "cross_stitch": {},
    "etr_nlp": {"gamma": 0.5},
}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe", help="recipe name under recipes/ (census_income, bank_marketing) or a YAML path")
    parser.add_argument("--arch", nargs="+", default=None,
                        help=f"architectures (default hps, none with --baselines); presets: {', '.join(ARCHITECTURES)}")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="recipe override applied to every run, e.g. training.epochs=4")
    parser.add_argument("--baselines", action="store_true",
                        help="train the single-task baselines (then the table reports delta_m)")
    parser.add_argument("--skip-preprocess", action="store_true", help="reuse the dataset already written")
    parser.add_argument("--verbose", type=int, default=0, help="1 shows a progress bar per epoch")
    return parser.parse_args(argv)


def recipe_path(name: str) -> Path:
    path = Path(name)
    return path.resolve() if path.suffix in (".yaml", ".yml") else ROOT / "recipes" / f"{name}.yaml"


def load_bench_recipe(name: str, overrides: Sequence[str]) -> tuple[Path, Any, str | None]:
    """The recipe ``name`` (under recipes/ or a YAML path) with ``overrides``, read from the
    repository root (recipes name their files relative to it): its path, the recipe (None when
    it does not load) and the error line to print (None when it loads)."""
    from mtl_tf.recipe import RecipeError, load_recipe

    path = recipe_path(name)
    os.chdir(ROOT)
    try:
        return path, load_recipe(path, overrides, check=False), None
    except RecipeError as err:
        return path, None, f"error: {err}"


def throwaway_tracking(folder: str, experiment: str) -> str:
    """A sqlite tracking URI in ``folder`` whose experiment keeps its artifacts there too."""
    from mlflow import MlflowClient

    uri = f"sqlite:///{folder}/mlflow.db"
    MlflowClient(uri).create_experiment(experiment, artifact_location=Path(folder, "artifacts").as_uri())
    return uri


def check_data(recipe) -> str | None:
    """Why the recipe's raw data cannot be read, or None when it is there."""
    from pipelines.sources import expand_sources

    try:
        expand_sources(recipe.data.source.patterns)
    except ValueError as err:
        return (f"{err}\nThe real data is not here: {recipe.name} reads {recipe.data.source.patterns} "
                "(relative to the repository root); see ../shared/data/README.md.")
    return None


def architecture_override(name: str) -> str:
    options = {"name": name, **ARCHITECTURES.get(name, {})}
    return f"model.architecture={json.dumps(options)}"


def train_architecture(path: Path, arch: str, entry: str, overrides: Sequence[str], skip_preprocess: bool,
                       tracking_uri: str, verbose: int) -> tuple[Any, Any, dict[str, Any], float]:
    """Runs the recipe at ``path`` end to end with architecture ``arch`` (nothing registered),
    its outputs under ``artifacts/bench/<recipe>/<entry>``; returns the recipe run, the
    :func:`run_recipe` result, its report.json and the wall time in seconds."""
    from mtl_tf.recipe import load_recipe
    from mtl_tf.runner import run_recipe

    base = load_recipe(path, overrides, check=False)
    recipe = load_recipe(path, [*overrides, architecture_override(arch),
                                f"output_dir=artifacts/bench/{base.name}/{entry}"])
    start = time.perf_counter()
    result = run_recipe(recipe, recipe_path=str(path), tracking_uri=tracking_uri, register=False,
                        skip_preprocess=skip_preprocess, verbose=verbose, echo=lambda line: None)
    wall = time.perf_counter() - start
    report = json.loads(result.report_path.with_name("report.json").read_text())
    return recipe, result, report, wall


def run_one(path: Path, arch: str, overrides: Sequence[str], skip_preprocess: bool, tracking_uri: str,
            verbose: int) -> dict[str, Any]:
    """Trains, evaluates and exports one architecture; returns its results entry."""
    recipe, result, report, wall = train_architecture(path, arch, arch, overrides, skip_preprocess, tracking_uri,
                                                      verbose)
    training = report["training"]
    return {
        "architecture": recipe.model.architecture.as_dict(),
        "trunk": recipe.model.trunk.as_dict(),
        "tower": recipe.model.tower.as_dict(),
        "test": {task: {m: round(float(v), 4) for m, v in metrics.items()}
                 for task, metrics in result.test_metrics.items()},
        "trainable_parameters": report["parameters"]["trainable"],
        "epochs_run": training["epochs_run"],
        "best_epoch": training["best_epoch"],
        "seconds_per_epoch": round(training["seconds"] / max(training["epochs_run"], 1), 1),
        "seconds_total": round(wall, 1),
        "preprocess_seconds": None if skip_preprocess else round(result.timings.get("preprocess", 0.0), 1),
    }


def run_baselines_entry(path: Path, overrides: Sequence[str], skip_preprocess: bool, tracking_uri: str,
                        verbose: int) -> dict[str, Any]:
    """Trains one single-task hps model per task; returns the results file's baselines entry."""
    from mtl_tf.recipe import load_recipe
    from mtl_tf.runner import run_baselines

    base = load_recipe(path, overrides, check=False)
    recipe = load_recipe(path, [*overrides, architecture_override("hps"),
                                f"output_dir=artifacts/bench/{base.name}/baselines"])
    start = time.perf_counter()
    result = run_baselines(recipe, tracking_uri=tracking_uri, skip_preprocess=skip_preprocess, verbose=verbose,
                           echo=lambda line: None)
    return {
        "architecture": "hps, one model per task",
        "test": {task: {m: round(float(v), 4) for m, v in metrics.items()}
                 for task, metrics in result.test_metrics.items()},
        "seconds_total": round(time.perf_counter() - start, 1),
    }


def add_delta_m(results: dict[str, Any], recipe) -> None:
    """Sets each architecture's delta_m (primary metrics, %) against the stored baselines."""
    from mtl_tf.evaluation.delta_m import delta_m
    from mtl_tf.tasks import build_tasks

    baselines = results.get("baselines")
    if not baselines:
        return
    tasks = build_tasks(recipe.tasks)
    for entry in results["architectures"].values():
        result = delta_m(entry["test"], baselines["test"], tasks)
        entry["delta_m_pct"] = None if result.primary is None else round(result.primary, 3)


def markdown_table(results: dict[str, Any]) -> str:
    """One row per architecture: the primary test metric of each task, delta_m against the
    single-task baselines (when stored), parameters, time."""
    entries = results["architectures"]
    tasks = results["tasks"]
    baselines = results.get("baselines")
    header = ["architecture", *[f"{t} test {m}" for t, m in tasks.items()]]
    header += ["delta_m (%)"] if baselines else []
    header += ["trainable params", "s / epoch", "epochs (best)"]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    if baselines:
        cells = ["single-task baselines", *[f"{baselines['test'][t][m]:.4f}" for t, m in tasks.items()], "0",
                 "", "", ""]
        lines.append("| " + " | ".join(cells) + " |")
    for arch, entry in entries.items():
        cells = [arch, *[f"{entry['test'][t][m]:.4f}" for t, m in tasks.items()]]
        if baselines:
            value = entry.get("delta_m_pct")
            cells.append("n/a" if value is None else f"{value:+.2f}")
        cells += [f"{entry['trainable_parameters']:,}", f"{entry['seconds_per_epoch']:.1f}",
                  f"{entry['epochs_run']} ({entry['best_epoch']})"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def merge_results(name: str, recipe, new: dict[str, Any], baselines: dict[str, Any] | None = None) -> dict[str, Any]:
    """The results file's contents with ``new`` architecture entries (and new baselines) merged in."""
    path = RESULTS / f"{name}.json"
    old = json.loads(path.read_text()) if path.is_file() else {}
    merged = {
        "benchmark": name,
        "recipe": f"recipes/{name}.yaml",
        "machine": machine(),
        "tasks": {t.name: t.primary_metric or "auc" for t in recipe.tasks},
        "training": {"epochs": recipe.training.epochs, "batch_size": recipe.training.batch_size,
                     "optimizer": recipe.training.optimizer.as_dict(),
                     "early_stopping": recipe.training.early_stopping.model_dump()
                     if recipe.training.early_stopping else None},
        "architectures": {**old.get("architectures", {}), **new},
    }
    if baselines or old.get("baselines"):
        merged["baselines"] = baselines or old["baselines"]
    add_delta_m(merged, recipe)
    return merged


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    path, recipe, error = load_bench_recipe(args.recipe, args.overrides)
    if error:
        print(error, file=sys.stderr)
        return 2
    problem = check_data(recipe)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    new, baselines = {}, None
    archs = args.arch if args.arch is not None else ([] if args.baselines else ["hps"])
    with tempfile.TemporaryDirectory(prefix="mtl-bench-") as tmp:
        uri = throwaway_tracking(tmp, recipe.tracking.experiment or recipe.name)
        if args.baselines:
            print(f"{recipe.name}: single-task baselines ...", flush=True)
            baselines = run_baselines_entry(path, args.overrides, args.skip_preprocess, uri, args.verbose)
            print(json.dumps(baselines["test"]), flush=True)
        for i, arch in enumerate(archs):
            print(f"{recipe.name}: {arch} ...", flush=True)
            skip = args.skip_preprocess or args.baselines or i > 0
            new[arch] = run_one(path, arch, args.overrides, skip, uri, args.verbose)
            print(json.dumps(new[arch]["test"]), f"{new[arch]['seconds_per_epoch']} s/epoch", flush=True)
    results = merge_results(recipe.name, recipe, new, baselines)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{recipe.name}.json").write_text(json.dumps(results, indent=2) + "\n")
    print(markdown_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
