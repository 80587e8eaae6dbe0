"""Beam preprocessing: rows/s of the pipeline vs a plain Python loop doing the same work.

Both parse and validate the same synthetic fraud CSV files against the fraud-signals recipe,
split, and write gzip tf.Example TFRecords; the plain loop (`pipelines/plain_python.py`) shares
the parsing and encoding functions and runs in one process: the practical limit of one core.
The Beam figures are DirectRunner in one process, and DirectRunner multi-processing on every
core; the result is rows/s per core relative to the plain loop. Target: >= 0.5x per core.
The three are run in turn, round after round, and the medians compared.

Each round also runs the three on a small file (``--small-rows``), which takes about as long
as a run's fixed cost (starting the worker processes, building and translating the
pipeline, shutting the workers down). From the two sizes, each contender's time is
``fixed + rows * per_row``; the results give both, and the row count from which the
multi-process run meets the target (``crossover_rows``). Wall and CPU seconds (this
process and its worker processes) are recorded per run with the load average, since the
machine may be shared.

    python bench/beam_preprocess.py [--rows 100000] [--repeats 3]
    python bench/beam_preprocess.py --rows 400000 --repeats 2 --name beam_preprocess_400k
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import write_result  # noqa: E402
from fraud_fixture import fraud_recipe  # noqa: E402

TARGET = 0.5


def cpu_seconds() -> float:
    """CPU seconds of this process and of its finished child processes (Beam's workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed_rounds(contenders: dict[str, Callable[[], int]], repeats: int) -> dict[str, list[dict]]:
    """Runs each contender in turn, round after round; name -> one record per run."""
    runs: dict[str, list[dict]] = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, fn in contenders.items():
            load = os.getloadavg()[0]
            wall, cpu = time.perf_counter(), cpu_seconds()
            rows = fn()
            wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
            runs[name].append({"rows": rows, "wall_s": wall, "cpu_s": cpu, "load_1min": load})
    return runs


def linear_model(small: list[dict], large: list[dict]) -> dict[str, float]:
    """``wall = fixed + rows * per_row`` through the median wall times at the two sizes."""
    t_small, t_large = (statistics.median(run["wall_s"] for run in runs) for runs in (small, large))
    n_small, n_large = small[0]["rows"], large[0]["rows"]
    per_row = (t_large - t_small) / (n_large - n_small)
    return {"fixed_s": t_small - per_row * n_small, "per_row_us": per_row * 1e6,
            "rows_per_s_without_fixed": 1 / per_row if per_row > 0 else float("inf")}


def crossover_rows(multi: dict[str, float], plain: dict[str, float], cores: int) -> float | None:
    """Rows from which ``cores`` worker processes reach TARGET x the plain loop per core:
    ``fixed_m + n p_m <= (fixed_p + n p_p) / (TARGET cores)``; None if never."""
    scale = 1 / (TARGET * cores)
    gain = scale * plain["per_row_us"] - multi["per_row_us"]
    if gain <= 0:
        return None
    return max(0.0, (multi["fixed_s"] - scale * plain["fixed_s"]) / (gain * 1e-6))


def explain(models: dict[str, dict[str, float]], crossover: float | None, load: float, cores: int, rows: int,
            ratio: float) -> str:
    """One paragraph: the multi-process run's fixed cost and per-row time against the plain
    loop's, the crossover, and whether the load let the worker processes run in parallel."""
    multi, plain = models["multi"], models["plain"]
    text = (f"{cores} worker processes: {multi['fixed_s']:.2f} s fixed per run (starting the workers, mostly "
            f"importing Beam in each; building and translating the pipeline; shutting the workers down) plus "
            f"{multi['per_row_us']:.1f} us/row, vs {plain['fixed_s']:.2f} s + {plain['per_row_us']:.1f} us/row for "
            f"the plain loop; measured at {rows:,} rows: {ratio:.2f}x per core. ")
    if crossover is not None:
        text += f"{TARGET}x per core from {crossover:,.0f} rows."
    else:
        text += f"{TARGET}x per core is not reached at any size with these per-row times."
    if load >= cores - 0.5:
        text += (f" The load average ({load:.1f}, on {cores} cores) left the worker processes no idle cores: "
                 "they did not run in parallel, so the per-row time of the multi-process run is not its "
                 "quiet-machine figure; rerun on a quiet machine for the crossover.")
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100000)
    parser.add_argument("--small-rows", type=int, default=2000, help="the small file, for the fixed costs")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--name", default="beam_preprocess", help="results file name")
    args = parser.parse_args()

    from pipelines import plain_python
    from pipelines.csv_to_tfrecords import run as run_pipeline

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="mtl_bench_beam_"))
    cores = os.cpu_count() or 1
    datasets = {size: fraud_recipe(workdir / f"rows_{size}", size, files=max(2, cores))
                for size in (args.rows, args.small_rows)}

    def plain(size: int) -> Callable[[], int]:
        recipe, files = datasets[size]

        def go() -> int:
            out = workdir / f"rows_{size}" / "plain"
            shutil.rmtree(out, ignore_errors=True)
            plain_python.convert(recipe, files, str(out))
            return size
        return go

    def beam(size: int, beam_args: list[str]) -> Callable[[], int]:
        recipe, _ = datasets[size]

        def go() -> int:
            return run_pipeline(recipe, beam_args, out_dir=str(workdir / f"rows_{size}" / "beam")).rows_in
        return go

    multi_args = ["--runner=DirectRunner", "--direct_running_mode=multi_processing", f"--direct_num_workers={cores}"]
    kinds = {"plain": lambda size: plain(size), "single": lambda size: beam(size, ["--runner=DirectRunner"]),
             "multi": lambda size: beam(size, multi_args)}
    contenders = {f"{kind}_{size}": make(size) for size in (args.rows, args.small_rows) for kind, make in kinds.items()}
    runs = timed_rounds(contenders, args.repeats)

    def rates(kind: str) -> dict:
        values = [run["rows"] / run["wall_s"] for run in runs[f"{kind}_{args.rows}"]]
        return {"median": statistics.median(values), "all": values}

    plain_rate, single_rate, multi_rate = (rates(kind)["median"] for kind in kinds)
    models = {kind: linear_model(runs[f"{kind}_{args.small_rows}"], runs[f"{kind}_{args.rows}"]) for kind in kinds}
    crossover = crossover_rows(models["multi"], models["plain"], cores)
    multi_ratio = multi_rate / cores / plain_rate
    loads = [run["load_1min"] for record in runs.values() for run in record]
    write_result(args.name, {
        "workload": {"rows": args.rows, "small_rows": args.small_rows, "files": len(datasets[args.rows][1]),
                     "features": len(datasets[args.rows][0].data.features), "tasks": len(datasets[args.rows][0].tasks),
                     "cores": cores},
        "load_1min": {"min": min(loads), "median": statistics.median(loads), "max": max(loads)},
        "plain_python_rows_per_s": rates("plain"),
        "beam_direct_1_process_rows_per_s": rates("single"),
        f"beam_direct_{cores}_processes_rows_per_s": rates("multi"),
        "ratio_per_core_1_process": single_rate / plain_rate,
        f"ratio_per_core_{cores}_processes": multi_ratio,
        "target": f">= {TARGET} per core",
        "model_wall_s_is_fixed_plus_rows_times_per_row": {
            "plain": models["plain"], "beam_direct_1_process": models["single"],
            f"beam_direct_{cores}_processes": models["multi"]},
        f"crossover_rows_{cores}_processes": crossover,
        "explanation": explain(models, crossover, statistics.median(loads), cores, args.rows, multi_ratio),
        "runs": runs,
    })


if __name__ == "__main__":
    main()
