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
- :mod:`pipelines.plain_python`: the same conversion in one process, without Beam.
"""
