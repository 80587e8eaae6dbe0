"""CSV files -> tf.Example TFRecords per split, ``dataset.json`` and a rejects file.

Run it with any Beam runner; options pass through unchanged::

    result = run(load_recipe("recipes/fraud_signals.yaml"))                  # DirectRunner
    result = run(recipe, ["--runner=DirectRunner", "--direct_num_workers=2",
                          "--direct_running_mode=multi_processing"])
    result = run(recipe, ["--runner=apache_beam.runners.dask.dask_runner.DaskRunner",
                          "--dask_client_address=tcp://scheduler:8786"])     # a Dask cluster

Output folder (``recipe.data.output_dir`` unless ``out_dir`` is given)::

    dataset.json                      the contract read by training and serving
    train-00000-of-00004.tfrecord.gz  (and validation-*, test-*): gzip TFRecords
    rejects/rejects-00000-of-00001.jsonl  {"file", "reason", "kind", "line"} per bad record
    summary.json                      counts and statistics computed inside the pipeline
    written.json                      records per output file, counted where each was written
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Sequence

from mtl_tf.data.spec import (CategoricalStats, DatasetSpec, FeatureSpec, LabelStats, NumericStats,
                              RegressionStats, RejectsSpec, SplitSpec, TaskSpec)
from mtl_tf.recipe.schema import SPLIT_NAMES, Recipe
from pipelines.sources import check_headers, expand_sources, file_columns, local_output_dir
from pipelines.splits import active_splits, check_split_files

FEATURE_DTYPES = {"numeric": "float32", "categorical": "string", "timestamp": "int64",
                  "sequence": "float32"}
REJECTS_DIR = "rejects"
REJECTS_PATTERN = f"{REJECTS_DIR}/rejects-*.jsonl"


@dataclass
class PreprocessResult:
    """What a preprocessing run produced.

    Attributes:
        spec: the written ``dataset.json``, as a :class:`DatasetSpec`.
        path: the path of ``dataset.json``.
        rows_in: data records read (header and blank lines not counted).
        rows_written: examples written to the shards, per split.
        rows_rejected: records set aside in the rejects file.
        rejects_by_reason: rejected records per reason kind.
        blank_lines: blank lines skipped (not rows).
    """

    spec: DatasetSpec
    path: Path
    rows_in: int
    rows_written: dict[str, int]
    rows_rejected: int
    rejects_by_reason: dict[str, int]
    blank_lines: int = 0

    def summary(self) -> str:
        """Rows in = written (per split) + rejected (per reason), and where dataset.json is."""
        written = ", ".join(f"{split} {n}" for split, n in self.rows_written.items())
        blank = (f"; {self.blank_lines} blank line{'' if self.blank_lines == 1 else 's'} skipped"
                 if self.blank_lines else "")
        lines = [f"rows in {self.rows_in} = written {sum(self.rows_written.values())} ({written}) "
                 f"+ rejected {self.rows_rejected}{blank}"]
        for reason, count in sorted(self.rejects_by_reason.items()):
            lines.append(f"  rejected {count}: {reason}")
        lines.append(f"dataset.json: {self.path}")
        return "\n".join(lines)


def build_pipeline(pipeline, recipe: Recipe, files: list[str], out_dir: str) -> None:
    """Adds the CSV-to-TFRecords steps to ``pipeline`` (a ``beam.Pipeline`` or ``TestPipeline``).

    Args:
        pipeline: the pipeline to build on; running it is up to the caller.
        recipe: the recipe (features, tasks, split, shards).
        files: the CSV files (already expanded, not globs).
        out_dir: the output folder.

    Raises:
        ValueError: a file lacks a column the recipe reads, or ``data.split.by_file`` has no
            rule for a file.
    """
    import apache_beam as beam

    from pipelines.transforms import (EXAMPLES, REJECTS, REJECTS_FILE, SUMMARIES, SUMMARY_FILE, ConvertRows,
                                      ReadCsvBatches, ShardExamples, SummarizeBatches, WriteCounts, WriteFiles,
                                      example_files)

    headers = file_columns(files, recipe.data.source)
    check_headers(recipe, headers)
    check_split_files(recipe.data.split, files)
    shards = recipe.data.shards
    names = [name for split in active_splits(recipe.data.split) for name in example_files(split, shards)]
    source = recipe.data.source
    converted = (pipeline
                 | "ReadCsv" >> ReadCsvBatches(files, skip_header=source.header, delimiter=source.delimiter,
                                               encoding=source.encoding)
                 | "Convert" >> ConvertRows(recipe, headers))
    examples = converted[EXAMPLES] | "Shard" >> ShardExamples(shards)
    rejects = converted[REJECTS] | "RejectLines" >> beam.Map(lambda reject: (REJECTS_FILE, [json.dumps(reject)]))
    summary = (converted[SUMMARIES]
               | "Summarize" >> SummarizeBatches(recipe.data.features, recipe.tasks)
               | "SummaryJson" >> beam.Map(lambda merged: (SUMMARY_FILE, [json.dumps(merged, sort_keys=True)])))
    # Not flattened first: each writes its part files in the step that makes it (see WriteFiles).
    _ = ((examples, rejects, summary)
         | "WriteFiles" >> WriteFiles(out_dir, [*names, REJECTS_FILE, SUMMARY_FILE])
         | "CountWritten" >> WriteCounts(out_dir))


def run(recipe: Recipe, beam_args: Sequence[str] = (), out_dir: str | None = None) -> PreprocessResult:
    """Checks the inputs, runs the pipeline and writes ``dataset.json``.

    Args:
        recipe: the recipe.
        beam_args: Beam pipeline options (``--runner=...`` and the runner's own options);
            the DirectRunner when no runner is given.
        out_dir: the output folder; default ``recipe.data.output_dir``. Old shards, rejects
            and ``dataset.json`` there are removed first.

    Returns:
        A :class:`PreprocessResult`.

    Raises:
        ValueError: a glob matches nothing, a file lacks a column, ``data.split.by_file`` has no
            rule for a file or a rule without a file, or a task has no labelled row in some
            split (``dataset.json`` is still written, to inspect); when (nearly) every row was
            rejected, the message says so first, with the main reasons.
        RuntimeError: the pipeline lost or duplicated rows: the records read, the examples
            the shards received and the records the rejects file received disagree.
    """
    from pipelines.engine import pipeline_options, run_pipeline
    from pipelines.transforms import COUNTS_FILE, SUMMARY_FILE

    out = local_output_dir(out_dir or recipe.data.output_dir)
    files = expand_sources(recipe.data.source.patterns)
    check_headers(recipe, file_columns(files, recipe.data.source))
    check_split_files(recipe.data.split, files)
    clear_outputs(out)
    out.mkdir(parents=True, exist_ok=True)
    run_pipeline(pipeline_options(beam_args), lambda pipeline: build_pipeline(pipeline, recipe, files, str(out)))
    remove_temp_dirs(out)
    summary = json.loads((out / SUMMARY_FILE).read_text())
    written, rejected = files_written(recipe, json.loads((out / COUNTS_FILE).read_text())["files"])
    counts = summary["counts"]
    check_counts(counts["rows_in"], written, rejected)
    spec = dataset_spec(recipe, summary, written)
    path = spec.write(out)
    result = PreprocessResult(spec=DatasetSpec.read(path), path=path, rows_in=counts["rows_in"],
                              rows_written=written, rows_rejected=rejected,
                              rejects_by_reason=dict(counts["rows_rejected"]),
                              blank_lines=counts.get("blank_lines", 0))
    problems = spec.label_problems()
    if problems:
        raise ValueError("\n".join([*problems, result.summary()]))
    return result


def files_written(recipe: Recipe, files: Mapping[str, int]) -> tuple[dict[str, int], int]:
    """The examples the shards of each active split received and the records the rejects
    file received, from ``written.json``'s ``{file name: records}``."""
    from pipelines.transforms import REJECTS_FILE

    written = {split: 0 for split in active_splits(recipe.data.split)}
    for name, count in files.items():
        split = name.split("-", 1)[0]
        if name.endswith(".tfrecord.gz") and split in written:
            written[split] += count
    return written, files.get(REJECTS_FILE, 0)


def clear_outputs(out: Path) -> None:
    """Removes what an earlier run left (shards, rejects, summary, dataset.json), nothing else."""
    from pipelines.transforms import SUMMARY_FILE

    from pipelines.transforms import COUNTS_FILE

    if not out.is_dir():
        return
    old = [out / "dataset.json", out / SUMMARY_FILE, out / COUNTS_FILE, *out.glob(REJECTS_PATTERN)]
    for split in SPLIT_NAMES:
        old += out.glob(f"{split}-*.tfrecord.gz")
    for path in old:
        path.unlink(missing_ok=True)


def remove_temp_dirs(out: Path) -> None:
    """Removes the ``beam-temp-*`` folders and files that failed or retried writes leave."""
    for temp in [*out.glob("beam-temp-*"), *out.glob(f"{REJECTS_DIR}/beam-temp-*")]:
        if temp.is_dir():
            shutil.rmtree(temp, ignore_errors=True)
        else:
            temp.unlink(missing_ok=True)


def check_counts(rows_in: int, rows_written: Mapping[str, int], rows_rejected: int) -> None:
    """Fails unless every record read was written to a shard or to the rejects file, once.

    Args:
        rows_in: the records the conversion read (blank lines not counted).
        rows_written: split -> the examples its shards received.
        rows_rejected: the records the rejects file received.

    Raises:
        RuntimeError: naming the three numbers, when rows in != written + rejected.
    """
    written = sum(rows_written.values())
    if rows_in != written + rows_rejected:
        per_split = ", ".join(f"{split} {n}" for split, n in rows_written.items())
        raise RuntimeError(f"rows in ({rows_in}) != examples written to the shards ({written}: {per_split}) + "
                           f"records in the rejects file ({rows_rejected}) = {written + rows_rejected}; the "
                           f"pipeline {'lost' if rows_in > written + rows_rejected else 'duplicated'} "
                           f"{abs(rows_in - written - rows_rejected)} rows")


def dataset_spec(recipe: Recipe, summary: Mapping[str, Any],
                 written: Mapping[str, int] | None = None) -> DatasetSpec:
    """The ``dataset.json`` contents from the recipe and the pipeline's ``summary.json``.

    Args:
        recipe: the recipe.
        summary: the ``summary.json`` contents.
        written: split -> examples in its shards; default the summary's counts.
    """
    counts = summary["counts"]
    written = counts["rows_written"] if written is None else written
    splits = list(active_splits(recipe.data.split))
    return DatasetSpec(
        name=recipe.name,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        rows_in=counts["rows_in"],
        blank_lines=counts.get("blank_lines", 0),
        features=[_feature_spec(f, summary["statistics"][f.name]) for f in recipe.data.features],
        tasks=[_task_spec(t, summary["labels"], splits) for t in recipe.tasks],
        splits={s: SplitSpec(pattern=f"{s}-*.tfrecord.gz", num_examples=written.get(s, 0),
                             num_shards=recipe.data.shards) for s in splits},
        rejects=RejectsSpec(count=sum(counts["rows_rejected"].values()), location=REJECTS_PATTERN,
                            by_reason=dict(sorted(counts["rows_rejected"].items())),
                            examples=dict(summary.get("reject_examples", {}))),
        split_key=recipe.data.split.key,
        source=recipe.data.source.patterns,
        source_encoding=recipe.data.source.encoding,
    )


def _feature_spec(feature, stats: Mapping[str, Any]) -> FeatureSpec:
    kind_stats = CategoricalStats(**stats) if feature.kind == "categorical" else NumericStats(**stats)
    return FeatureSpec(name=feature.name, kind=feature.kind, dtype=FEATURE_DTYPES[feature.kind],
                       embedding_dim=feature.embedding_dim, length=feature.length, stats=kind_stats)


def _task_spec(task, labels: Mapping[str, Any], splits: list[str]) -> TaskSpec:
    size = len(task.classes or [])
    empty = {"labelled": 0, "positives": [0] * size if task.type in ("multiclass", "multilabel") else 0}
    per_split = {s: labels.get(s, {}).get(task.name, empty) for s in splits}
    positives = {} if task.type == "regression" else {s: c["positives"] for s, c in per_split.items()}
    return TaskSpec(name=task.name, type=task.type, label_key=task.label,
                    dtype="int64" if task.type == "multiclass" else "float32", classes=task.classes,
                    labelled={s: c["labelled"] for s, c in per_split.items()}, positives=positives,
                    stats=regression_stats(task, per_split))


def regression_stats(task, per_split: Mapping[str, Mapping[str, Any]]) -> RegressionStats | None:
    """A regression task's :class:`RegressionStats` from its per-split label summaries (a
    split without labels gets count 0); None for other task types."""
    if task.type != "regression":
        return None
    return RegressionStats({split: LabelStats(**counts.get("stats", {"count": counts.get("labelled", 0)}))
                            for split, counts in per_split.items()})
