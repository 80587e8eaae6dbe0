"""Converting a batch of CSV lines in plain Python: parse, validate, split, encode, summarize.

:class:`BatchConverter` is the whole per-row work of the CSV conversion. The Beam pipeline
calls it once per batch of lines (so each row costs one list append in the engine rather
than a trip through several steps), and the plain-Python converter calls it on chunks of a
file, so both do exactly the same work with the same functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from mtl_tf.recipe.schema import Recipe
from pipelines.encoding import encode_example
from pipelines.records import Record
from pipelines.rows import RowParser, RowRejected, reject_record
from pipelines.splits import active_splits, assign_split, file_fractions
from pipelines.statistics import SummaryFn


@dataclass
class ConvertedBatch:
    """What one batch of lines became.

    Attributes:
        examples: split -> the serialized ``tf.Example`` of each row assigned to it, in
            input order; every active split is present, maybe with an empty list.
        rejects: the rejects-file entries of the lines that were set aside.
        summary: the batch's partial summary, an accumulator of :class:`SummaryFn`.
    """

    examples: dict[str, list[bytes]]
    rejects: list[dict[str, str]]
    summary: dict[str, Any]


class BatchConverter:
    """Turns batches of ``(file, line)`` into examples per split, rejects and a partial summary.

    Args:
        recipe: the recipe (features, tasks, split).
        headers: file -> its column names; files with the same header share one parser.

    Raises:
        ValueError: a header lacks a column the recipe reads, or no ``data.split.by_file``
            rule matches a file.
    """

    def __init__(self, recipe: Recipe, headers: Mapping[str, Sequence[str]]):
        plans: dict[tuple, RowParser] = {}
        self.parsers: dict[str, RowParser] = {}
        for path, header in headers.items():
            if tuple(header) not in plans:
                plans[tuple(header)] = RowParser(recipe, header)
            self.parsers[path] = plans[tuple(header)]
        self.fractions = active_splits(recipe.data.split)
        self.file_fractions = {path: file_fractions(recipe.data.split, path) for path in headers}
        self.seed = recipe.data.split.seed
        self.summary_fn = SummaryFn(recipe.data.features, recipe.tasks)

    def convert(self, lines: Sequence[tuple[str, Record]]) -> ConvertedBatch:
        """Parses, validates, splits and encodes ``lines`` and summarizes them.

        Args:
            lines: ``(file, record)`` pairs, as :func:`pipelines.records.read_records` yields
                records: a ``str`` is a row; None a blank line (counted, not a row); a
                :class:`~pipelines.records.BadRecord` a row rejected as it is. The file picks
                the header the record is read with.

        Returns:
            A :class:`ConvertedBatch`.

        Raises:
            ValueError: a line comes from a file whose header is unknown.
        """
        seed = self.seed
        rows: dict[str, list[dict[str, Any]]] = {split: [] for split in self.fractions}
        rejects = []
        blank = 0
        for path, line in lines:
            if line.__class__ is not str:
                if line is None:
                    blank += 1
                else:
                    rejects.append({"file": path, "reason": line.reason, "kind": line.kind, "line": line.text})
                continue
            try:
                key, values = self._parser(path).parse_line(line)
            except RowRejected as reject:
                rejects.append(reject_record(path, line, reject))
                continue
            rows[assign_split(key, self.file_fractions[path], seed)].append(values)
        summary = self.summary_fn.batch_summary(len(lines) - blank, rows, [r["kind"] for r in rejects],
                                                blank_lines=blank, reasons=[r["reason"] for r in rejects])
        examples = {split: [encode_example(values) for values in split_rows] for split, split_rows in rows.items()}
        return ConvertedBatch(examples=examples, rejects=rejects, summary=summary)

    def _parser(self, path: str) -> RowParser:
        parser = self.parsers.get(path)
        if parser is None:
            raise ValueError(f"no header was read for {path!r}; known files: {sorted(self.parsers)}")
        return parser
