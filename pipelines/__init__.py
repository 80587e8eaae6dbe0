"""Apache Beam pipelines that turn raw data into tf.Example TFRecords and ``dataset.json``.

- :mod:`pipelines.records`: reading CSV records from bytes (quoted line breaks, blank lines,
  a BOM, bytes that are not UTF-8), also from byte ranges of one file in parallel.
- :mod:`pipelines.rows`: parsing and validating one CSV row against a recipe (pure Python).
- :mod:`pipelines.encoding`: one parsed row to a serialized ``tf.Example``; TFRecord framing.
- :mod:`pipelines.splits`: the hashed, deterministic train/validation/test assignment.
- :mod:`pipelines.statistics`: CombineFns for feature statistics, label counts and the summary.
- :mod:`pipelines.batches`: one batch of CSV lines to examples, rejects and a partial summary.
- :mod:`pipelines.sources`: driver-side checks of the input files (globs, headers).
- :mod:`pipelines.transforms`: the labelled PTransforms the pipelines are built from.
- :mod:`pipelines.csv_to_tfrecords`: the CSV pipeline (``build_pipeline``, ``run``).
- :mod:`pipelines.images`: the image pipeline (manifest, image folder and npz sources).
- :mod:`pipelines.plain_python`: the CSV conversion in one process, without Beam.

:func:`run` picks the pipeline of a recipe's ``data.source.kind``.
"""

from __future__ import annotations

import importlib
from typing import Any, Sequence

# data.source.kind -> the module whose run(recipe, beam_args, out_dir) preprocesses it.
PIPELINES = {"csv": "pipelines.csv_to_tfrecords", "manifest": "pipelines.images.pipeline",
             "image_folder": "pipelines.images.pipeline", "npz": "pipelines.images.pipeline"}


def run(recipe: Any, beam_args: Sequence[str] = (), out_dir: str | None = None) -> Any:
    """Runs the Beam pipeline of ``recipe.data.source.kind`` and returns its ``PreprocessResult``.

    Args:
        recipe: the recipe.
        beam_args: Beam pipeline options (``--runner=...`` and the runner's own options).
        out_dir: the output folder; default ``recipe.data.output_dir``.

    Raises:
        ValueError: the source kind has no pipeline, or the pipeline refuses its inputs.
    """
    kind = recipe.data.source.kind
    if kind not in PIPELINES:
        raise ValueError(f"data.source.kind: no pipeline for {kind!r}; allowed: {', '.join(sorted(PIPELINES))}")
    return importlib.import_module(PIPELINES[kind]).run(recipe, list(beam_args), out_dir=out_dir)
