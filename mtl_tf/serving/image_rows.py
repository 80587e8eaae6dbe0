"""Images -> serialized tf.Example, exactly as the image pipeline writes them.

An image recipe's rows hold file paths. They are read by the image pipeline's own parts:
a manifest by :class:`pipelines.images.sources.ManifestReader`, each item by
:meth:`pipelines.images.convert.ItemConverter.convert_item` (decoded and checked by
:mod:`pipelines.images.validation`, converted to the feature's channels, placed and
resized by :mod:`pipelines.images.geometry`, encoded as the feature's PNG or JPEG), so the
example served is the one the TFRecords would hold for that image, without its labels.

Inputs:
- a manifest in the recipe's manifest layout: CSV with a header line (the recipe's
  delimiter and ``na_values`` when its source is a manifest) or JSON lines, the image
  column holding a path relative to the manifest's folder (or absolute), plus the recipe's
  other feature columns; label and split-key columns are ignored;
- a folder: every image file directly in it (``.png``, ``.jpg``, ``.jpeg``, ``.bmp``,
  ``.gif``, any case), sorted by name, for a recipe whose only feature is the image; other
  files are skipped and counted.

Each row is an :class:`ImageRowInput`: its example (or why it has none, with the pipeline's
reject kinds: ``file_not_found``, ``unreadable_image``, ``image_too_large``, ...), the image
path as the input names it, and where the image went in the stored one (what maps a
prediction back to the input's pixels).
"""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from mtl_tf.recipe.schema import ImageFolderSource, ManifestSource, Recipe
from mtl_tf.serving.rows import RowInput, features_only, input_format

IMAGE_EXTENSIONS = tuple(ImageFolderSource.model_fields["extensions"].default_factory())


@dataclass(frozen=True)
class ImageRowInput(RowInput):
    """One image row: a :class:`~mtl_tf.serving.rows.RowInput` with its image.

    Attributes:
        image: the image path as the input names it (a manifest's cell, a folder's file).
        placement: where the source image went in the stored one
            (:class:`pipelines.images.geometry.Placement`); None for a rejected row.
        source_size: the source image's (width, height) in pixels; None for a rejected row.
    """

    image: str | None = None
    placement: Any = None
    source_size: tuple[int, int] | None = None


class ImageExampleEncoder:
    """Turns a manifest's rows or a folder's images into the examples the image pipeline would write.

    Args:
        recipe: the recipe the model was trained with (its image feature, other features and
            source options).
        max_pixels: larger images are rejected (``image_too_large``); default the pipeline's.

    Raises:
        ValueError: the recipe has no image feature.
    """

    def __init__(self, recipe: Recipe, max_pixels: int | None = None):
        from pipelines.images.convert import ItemConverter
        from pipelines.images.validation import MAX_PIXELS

        self.feature = recipe.data.image_feature
        if self.feature is None:
            raise ValueError("an image input needs a recipe with an image feature (kind: image); the recipe's "
                             f"features: {', '.join(f'{f.name} ({f.kind})' for f in recipe.data.features)}")
        self.others = [f.name for f in recipe.data.features if f.kind != "image"]
        self._recipe = features_only(recipe)
        self.source = recipe.data.source
        self.converter = ItemConverter(self._recipe, MAX_PIXELS if max_pixels is None else max_pixels)
        self.skipped = 0

    def read(self, path: str | Path, format: str | None = None) -> Iterator[ImageRowInput]:
        """The rows of a manifest (format from the suffix unless given) or the images of a folder.

        Raises:
            ValueError: the manifest lacks a feature's column, or a folder is given for a
                recipe with other features, or holds no image file.
        """
        path = Path(path)
        if path.is_dir():
            return self._read_folder(path)
        return self._read_manifest(path, format or input_format(path))

    def encode_item(self, row: int, item: Any) -> ImageRowInput:
        """One :class:`pipelines.images.items.Item` -> its row; any failure rejects this row only."""
        from pipelines.encoding import encode_example
        from pipelines.images.items import ItemRejected
        from pipelines.rows import RowRejected

        image = item.values.get(self.feature.source_column)
        shown = image.strip() if isinstance(image, str) and image.strip() else None
        try:
            stored = self.converter.convert_item(item)
            example = encode_example(stored.values)
        except (ItemRejected, RowRejected) as reject:
            return ImageRowInput(row, kind=reject.kind, reason=reject.message, image=shown)
        except Exception as error:  # one image never stops the others, as in the pipeline
            kind = f"error: {type(error).__name__}"
            return ImageRowInput(row, kind=kind, reason=f"{kind}: {error}", image=shown)
        return ImageRowInput(row, example=example, image=shown, placement=stored.placement,
                             source_size=stored.source_size)

    def _read_manifest(self, path: Path, kind: str) -> Iterator[ImageRowInput]:
        from pipelines.images.sources import ManifestReader

        reader = ManifestReader(self._manifest_recipe(path, kind))  # a missing column: one error for the file
        return self._encoded(item for items in reader.read(reader.files[0]) for item in items)

    def _manifest_recipe(self, path: Path, kind: str) -> Recipe:
        options = {}
        if isinstance(self.source, ManifestSource):
            options = {"delimiter": self.source.delimiter, "na_values": list(self.source.na_values)}
            if kind == "csv":  # a CSV manifest is decoded as the trained recipe's were; JSON lines are UTF-8
                options["encoding"] = self.source.encoding
        source = ManifestSource(kind="manifest", path=glob.escape(str(path.resolve())), format=kind, **options)
        return self._recipe.model_copy(update={"data": self._recipe.data.model_copy(update={"source": source})})

    def _read_folder(self, folder: Path) -> Iterator[ImageRowInput]:
        from pipelines.images.items import Item

        if self.others:
            raise ValueError(f"a folder of images answers a recipe whose only feature is the image; this one also "
                             f"has {', '.join(self.others)}: give a manifest (CSV or JSON lines) with the "
                             f"'{self.feature.source_column}' column and theirs")
        files = sorted(p for p in folder.iterdir() if p.is_file())
        images = [p for p in files if p.name.lower().endswith(IMAGE_EXTENSIONS)]
        self.skipped = len(files) - len(images)
        if not images:
            raise ValueError(f"no image files ({', '.join(IMAGE_EXTENSIONS)}) in {str(folder)!r}; "
                             f"{self.skipped} other files")
        column = self.feature.source_column
        return self._encoded(Item(source=str(path), values={column: str(path)}) for path in images)

    def _encoded(self, items: Iterator[Any]) -> Iterator[ImageRowInput]:
        for row, item in enumerate(items):
            yield self.encode_item(row, item)


def row_encoder(recipe: Recipe) -> Any:
    """The encoder of a recipe's rows: :class:`ImageExampleEncoder` for an image recipe, else
    :class:`~mtl_tf.serving.rows.ExampleEncoder`."""
    if recipe.data.image_feature is not None:
        return ImageExampleEncoder(recipe)
    from mtl_tf.serving.rows import ExampleEncoder

    return ExampleEncoder(recipe)
