"""Shared pieces of the benchmarks: machine facts, medians, JSON results."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any, Callable

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, Any]:
    import tensorflow as tf

    return {"cpus": os.cpu_count(), "python": platform.python_version(), "tensorflow": tf.__version__,
            "platform": platform.platform()}


def median_rate(fn: Callable[[], int], repeats: int) -> tuple[float, list[float]]:
    """Runs ``fn`` (which returns how many items it processed) ``repeats`` times; items/s."""
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        count = fn()
        rates.append(count / (time.perf_counter() - start))
    return statistics.median(rates), rates


def write_result(name: str, result: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    result = {"benchmark": name, "machine": machine(), **result}
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return path
