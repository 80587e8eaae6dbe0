"""Image sources (manifest, image folder, npz) -> tf.Example TFRecords per split, ``dataset.json``
and a rejects file.

Run it with any Beam runner; options pass through unchanged::

    result = run(load_recipe("recipes/driving_perception.yaml"))             # DirectRunner
    result = run(recipe, ["--runner=DirectRunner", "--direct_num_workers=2",
                          "--direct_running_mode=multi_processing"])

The steps: ``Units`` (small pieces of work from the source, made in the driver) -> ``ReadItems``
(lists of items) -> ``ConvertItems`` (decode, check, resize, encode, split, statistics; per
list of items) -> ``ShardExamples`` / rejects as JSON lines / ``Summarize`` -> ``WriteFiles``.
Three counts are made apart from each other: the items the reader stage read (``read.json``),
the records each output file received where it was written (``written.json``) and the
rejects; the run fails if items in != examples written + items rejected.

Output folder (``recipe.data.output_dir`` unless ``out_dir`` is given)::

    dataset.json                      the contract read by training and serving
    train-00000-of-00004.tfrecord.gz  (and validation-*, test-*): gzip TFRecords
    rejects/rejects-00000-of-00001.jsonl  {"file", "item", "image", "kind", "reason"} per bad item
    summary.json                      counts and statistics computed inside the pipeline
    read.json, written.json           the items read and the records per file written
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping, Sequence

from mtl_tf.data.spec import (CategoricalStats, DatasetSpec, DepthStats, DetectionStats, FeatureSpec, ImageInfo,
                              ImageStats, NumericStats, RejectsSpec, SegmentationStats, SplitSpec, TaskSpec)
from mtl_tf.recipe.schema import Recipe, Task
from pipelines.csv_to_tfrecords import (FEATURE_DTYPES, REJECTS_PATTERN, PreprocessResult, clear_outputs,
                                        regression_stats, remove_temp_dirs)
from pipelines.images.items import EXAMPLE_KEY
from pipelines.images.validation import MAX_PIXELS
from pipelines.sources import local_output_dir

READ_FILE = "read.json"
COUNTS_FILE = "written.json"
TASK_DTYPES = {"multiclass": "int64", "segmentation": "int32"}


@dataclass
class ImagePreprocessResult(PreprocessResult):
    """A :class:`~pipelines.csv_to_tfrecords.PreprocessResult` of an image source: ``rows_in``
    counts items (images), and ``skipped_files`` the files of an image folder that are not
    images (not items)."""

    skipped_files: int = 0

    def summary(self) -> str:
        """Items in = written (per split) + rejected (per reason), and where dataset.json is."""
        written = ", ".join(f"{split} {n}" for split, n in self.rows_written.items())
        skipped = f"; {self.skipped_files} non-image files skipped" if self.skipped_files else ""
        lines = [f"items in {self.rows_in} = written {sum(self.rows_written.values())} ({written}) "
                 f"+ rejected {self.rows_rejected}{skipped}"]
        for reason, count in sorted(self.rejects_by_reason.items()):
            lines.append(f"  rejected {count}: {reason}")
        lines.append(f"dataset.json: {self.path}")
        return "\n".join(lines)


def build_pipeline(pipeline, recipe: Recipe, reader, out_dir: str, max_pixels: int = MAX_PIXELS) -> None:
    """Adds the image-to-TFRecords steps to ``pipeline`` (a ``beam.Pipeline`` or ``TestPipeline``).

    Args:
        pipeline: the pipeline to build on; running it is up to the caller.
        recipe: the recipe (one image feature; tasks, split, shards).
        reader: the checked source, from :func:`pipelines.images.sources.image_source`.
        out_dir: the output folder.
        max_pixels: source images with more pixels are rejected (``image_too_large``).
    """
    import apache_beam as beam

    from pipelines.images.statistics import ImageSummaryFn
    from pipelines.images.transforms import ConvertItemsFn, ReadItemsFn, WriteCountsFn
    from pipelines.transforms import (EXAMPLES, REJECTS, REJECTS_FILE, SUMMARIES, SUMMARY_FILE, ShardExamples,
                                      SplitTagged, WriteFiles, example_files)

    shards = recipe.data.shards
    names = [name for split in recipe.data.split_names() for name in example_files(split, shards)]
    items = (pipeline
             | "Units" >> beam.Create(reader.units())
             | "SpreadUnits" >> beam.Reshuffle()
             | "ReadItems" >> beam.ParDo(ReadItemsFn(reader)))
    if reader.spread:
        items = items | "SpreadItems" >> beam.Reshuffle()
    read = (items
            | "CountRead" >> beam.Map(len)
            | "SumRead" >> beam.CombineGlobally(sum)
            | "ReadJson" >> beam.Map(lambda n: (READ_FILE, [json.dumps({"items_in": n})])))
    converted = (items
                 | "ConvertItems" >> beam.ParDo(ConvertItemsFn(recipe, max_pixels))
                 | "SplitConverted" >> SplitTagged([EXAMPLES, REJECTS, SUMMARIES]))
    examples = converted[EXAMPLES] | "Shard" >> ShardExamples(shards)
    rejects = converted[REJECTS] | "RejectLines" >> beam.Map(lambda reject: (REJECTS_FILE, [json.dumps(reject)]))
    image = recipe.data.image_feature
    others = [f for f in recipe.data.features if f.kind != "image"]
    summary = (converted[SUMMARIES]
               | "Summarize" >> beam.CombineGlobally(ImageSummaryFn(image, others, recipe.tasks))
               | "SummaryJson" >> beam.Map(lambda merged: (SUMMARY_FILE, [json.dumps(merged, sort_keys=True)])))
    _ = ((examples, rejects, summary, read)
         | "Outputs" >> beam.Flatten()
         | "WriteFiles" >> WriteFiles(out_dir, [*names, REJECTS_FILE, SUMMARY_FILE, READ_FILE])
         | "CountsByFile" >> beam.combiners.ToDict()
         | "WriteCounts" >> beam.ParDo(WriteCountsFn(out_dir, COUNTS_FILE)))


def run(recipe: Recipe, beam_args: Sequence[str] = (), out_dir: str | None = None,
        max_pixels: int = MAX_PIXELS) -> ImagePreprocessResult:
    """Checks the inputs, runs the pipeline and writes ``dataset.json``.

    Args:
        recipe: the recipe, with a ``manifest``, ``image_folder`` or ``npz`` source.
        beam_args: Beam pipeline options; the DirectRunner when no ``--runner`` is given.
        out_dir: the output folder; default ``recipe.data.output_dir``. Old shards, rejects
            and ``dataset.json`` there are removed first.
        max_pixels: source images with more pixels are rejected (``image_too_large``).

    Returns:
        An :class:`ImagePreprocessResult`.

    Raises:
        ValueError: an input is missing or lacks a column or array the recipe reads (one
            line per problem), or a task has no labelled item in some split
            (``dataset.json`` is still written, to inspect).
        RuntimeError: the counts disagree: items read != examples written + items rejected.
    """
    from pipelines.engine import pipeline_options, run_pipeline
    from pipelines.images.convert import ItemConverter
    from pipelines.images.sources import image_source
    from pipelines.splits import check_split_files
    from pipelines.transforms import SUMMARY_FILE

    out = local_output_dir(out_dir or recipe.data.output_dir)
    reader = image_source(recipe)
    ItemConverter(recipe, max_pixels)  # refuses a recipe it cannot convert before any worker starts
    if not getattr(recipe.data.source, "splits", None):
        check_split_files(recipe.data.split, reader.files)
    clear_outputs(out)
    for name in (READ_FILE, COUNTS_FILE):
        (out / name).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    run_pipeline(pipeline_options(beam_args),
                 lambda pipeline: build_pipeline(pipeline, recipe, reader, str(out), max_pixels))
    remove_temp_dirs(out)
    summary = json.loads((out / SUMMARY_FILE).read_text())
    items_in = json.loads((out / READ_FILE).read_text())["items_in"]
    written, rejected = files_written(recipe, json.loads((out / COUNTS_FILE).read_text())["files"])
    check_counts(items_in, written, rejected, summary["counts"])
    spec = dataset_spec(recipe, summary, items_in, written)
    path = spec.write(out)
    result = ImagePreprocessResult(spec=DatasetSpec.read(path), path=path, rows_in=items_in, rows_written=written,
                                   rows_rejected=rejected, rejects_by_reason=dict(summary["counts"]["rejected"]),
                                   skipped_files=reader.skipped)
    problems = spec.label_problems()
    if problems:
        raise ValueError("\n".join([*problems, result.summary()]))
    return result


def files_written(recipe: Recipe, files: Mapping[str, int]) -> tuple[dict[str, int], int]:
    """Split -> the examples its shards received, and the records the rejects file received,
    from ``written.json``'s ``{file name: records}``."""
    from pipelines.transforms import REJECTS_FILE

    written = {split: 0 for split in recipe.data.split_names()}
    for name, count in files.items():
        split = name.split("-", 1)[0]
        if name.endswith(".tfrecord.gz") and split in written:
            written[split] += count
    return written, files.get(REJECTS_FILE, 0)


def check_counts(items_in: int, written: Mapping[str, int], rejected: int, converted: Mapping[str, Any]) -> None:
    """Fails unless every item read was written to a shard or to the rejects file, once, and
    the conversion step's own counts agree.

    Args:
        items_in: the items the reader stage read.
        written: split -> the examples its shards received (counted where they were written).
        rejected: the records the rejects file received.
        converted: the summary's counts (``items_in``, ``written`` per split, ``rejected`` per kind).

    Raises:
        RuntimeError: naming the numbers that disagree.
    """
    total = sum(written.values())
    problems = []
    if items_in != total + rejected:
        change = "lost" if items_in > total + rejected else "duplicated"
        problems.append(f"items read ({items_in}) != examples written to the shards ({total}: "
                        f"{', '.join(f'{s} {n}' for s, n in written.items())}) + items in the rejects file "
                        f"({rejected}) = {total + rejected}; the pipeline {change} {abs(items_in - total - rejected)} "
                        "items")
    by_split = {s: converted["written"].get(s, 0) for s in written}
    if converted["items_in"] != items_in or by_split != dict(written) or sum(converted["rejected"].values()) != rejected:
        problems.append(f"the conversion counted {converted['items_in']} items in, written {by_split}, rejected "
                        f"{sum(converted['rejected'].values())}; the files received {dict(written)} and {rejected} "
                        f"rejects of {items_in} items read")
    if problems:
        raise RuntimeError("; ".join(problems))


def dataset_spec(recipe: Recipe, summary: Mapping[str, Any], items_in: int, written: Mapping[str, int]) -> DatasetSpec:
    """The ``dataset.json`` contents from the recipe, the pipeline's ``summary.json`` and the counts."""
    counts = summary["counts"]
    splits = recipe.data.split_names()
    features = []
    for feature in recipe.data.features:
        if feature.kind == "image":
            window = feature.window if isinstance(feature.window, str) else feature.window.model_dump()
            info = ImageInfo(height=feature.height, width=feature.width, channels=feature.channels,
                             encoding=feature.encoding, resize=feature.resize, bit_depth=feature.bit_depth,
                             window=window)
            features.append(FeatureSpec(name=feature.name, kind="image", dtype="uint8", image=info,
                                        stats=ImageStats(**summary["image"])))
        else:
            stats = summary["features"][feature.name]
            kind_stats = CategoricalStats(**stats) if feature.kind == "categorical" else NumericStats(**stats)
            features.append(FeatureSpec(name=feature.name, kind=feature.kind, dtype=FEATURE_DTYPES[feature.kind],
                                        embedding_dim=feature.embedding_dim, length=feature.length, stats=kind_stats))
    image = recipe.data.image_feature
    return DatasetSpec(
        name=recipe.name,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        rows_in=items_in,
        features=features,
        tasks=[task_spec(t, summary, splits, image.height, image.width) for t in recipe.tasks],
        splits={s: SplitSpec(pattern=f"{s}-*.tfrecord.gz", num_examples=written.get(s, 0),
                             num_shards=recipe.data.shards) for s in splits},
        rejects=RejectsSpec(count=sum(counts["rejected"].values()), location=REJECTS_PATTERN,
                            by_reason=dict(sorted(counts["rejected"].items()))),
        split_key=recipe.data.split.key,
        split_key_pattern=recipe.data.split.key_pattern,
        example_key=EXAMPLE_KEY if recipe.data.split.key else None,
        source=list(recipe.data.source.patterns),
        source_encoding=getattr(recipe.data.source, "encoding", None),  # manifests; image folders and npz: none
    )


def task_spec(task: Task, summary: Mapping[str, Any], splits: Sequence[str], height: int, width: int) -> TaskSpec:
    """The ``TaskSpec`` of one task: dtype, shape, labelled and positives per split, dense statistics
    (train) or a regression label's statistics per split."""
    classes = len(task.classes or [])
    per_class = task.type in ("multiclass", "multilabel", "segmentation", "detection")
    empty = {"labelled": 0, "positives": [0] * classes if per_class else 0}
    per_split = {s: summary["labels"].get(s, {}).get(task.name, empty) for s in splits}
    positives = ({} if task.type in ("regression", "depth")
                 else {s: counts["positives"] for s, counts in per_split.items()})
    shape = {"segmentation": [height, width], "depth": [height, width], "detection": [task.max_boxes, 5],
             "multilabel": [classes]}.get(task.type, [])
    stats = summary["dense"].get(task.name)
    dense_stats = {"segmentation": SegmentationStats, "depth": DepthStats, "detection": DetectionStats}
    return TaskSpec(name=task.name, type=task.type, label_key=task.label_key,
                    dtype=TASK_DTYPES.get(task.type, "float32"), classes=task.classes, shape=shape,
                    ignore_index=task.ignore_index if task.type == "segmentation" else None, derive=task.derive,
                    labelled={s: counts["labelled"] for s, counts in per_split.items()}, positives=positives,
                    stats=(dense_stats[task.type](**stats) if stats is not None
                           else regression_stats(task, per_split)))
