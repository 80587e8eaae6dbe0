"""The Beam DoFns of the image pipeline (the rest is reused from :mod:`pipelines.transforms`).

Counters (namespace ``mtl_tf``): ``items_read``, ``items_written``, ``items_rejected`` and
``items_rejected_<reason kind>``. Some runners do not report counters; the same numbers
are computed as data too (``read.json``, ``written.json``, ``summary.json``).
"""

from __future__ import annotations

import json

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from mtl_tf.recipe.schema import Recipe
from pipelines.images.convert import ItemConverter
from pipelines.transforms import EXAMPLES, NAMESPACE, REJECTS, SUMMARIES


class ReadItemsFn(beam.DoFn):
    """A unit of the source -> lists of items (:meth:`read` of the source's reader).

    Args:
        reader: the checked source, from :func:`pipelines.images.sources.image_source`.
    """

    def __init__(self, reader):
        self.reader = reader

    def setup(self):
        self.items_read = Metrics.counter(NAMESPACE, "items_read")

    def process(self, unit):
        for items in self.reader.read(unit):
            self.items_read.inc(len(items))
            yield items


class ConvertItemsFn(beam.DoFn):
    """A list of items -> ``("examples", (split, [serialized]))`` per split with examples,
    ``("rejects", reject dict)`` per bad item and one ``("summaries", partial summary)``: one
    output of tagged pairs (see :class:`pipelines.transforms.SplitTagged`).

    Args:
        recipe: the recipe.
        max_pixels: source images with more pixels are rejected.
    """

    def __init__(self, recipe: Recipe, max_pixels: int):
        self.recipe, self.max_pixels = recipe, max_pixels

    def setup(self):
        self.converter = ItemConverter(self.recipe, self.max_pixels)
        self.written = Metrics.counter(NAMESPACE, "items_written")
        self.rejected = Metrics.counter(NAMESPACE, "items_rejected")

    def process(self, items):
        batch = self.converter.convert(items)
        for split, examples in batch.examples.items():
            if examples:
                self.written.inc(len(examples))
                yield EXAMPLES, (split, examples)
        for reject in batch.rejects:
            self.rejected.inc()
            Metrics.counter(NAMESPACE, f"items_rejected_{reject['kind']}").inc()
            yield REJECTS, reject
        yield SUMMARIES, batch.summary


class WriteCountsFn(beam.DoFn):
    """``{file name: records}`` (what :class:`pipelines.transforms.WriteFiles` reports per file)
    -> the JSON file ``name`` (``{"files": {file name: records}}``) in ``out_dir``."""

    def __init__(self, out_dir: str, name: str):
        self.out_dir, self.name = out_dir, name

    def process(self, counts):
        with FileSystems.create(FileSystems.join(self.out_dir, self.name)) as handle:
            handle.write(json.dumps({"files": dict(sorted(counts.items()))}, sort_keys=True).encode("utf-8"))
