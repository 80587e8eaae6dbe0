"""`mtl data`: synthetic raw data, Beam preprocessing, dataset inspection."""

from __future__ import annotations

import json

import click

from mtl_tf.cli.options import read_recipe, recipe_argument, set_option
from mtl_tf.recipe import Recipe


@click.group()
def data() -> None:
    """Make, preprocess and inspect datasets."""


@data.command()
@click.argument("name")
@click.option("--rows", type=click.IntRange(min=1), default=20000, show_default=True,
              help="Rows (tables) or scenes (images).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder for the CSV files, or for the images and manifest.jsonl.")
@click.option("--files", type=click.IntRange(min=1), default=None, help="Tables: CSV files to spread rows over "
                                                                         "[default: 1].")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--malformed", type=click.FloatRange(0, 1), default=None,
              help="Tables: fraction of deliberately malformed rows (to exercise the rejects path) [default: 0].")
@click.option("--labels", "labels", multiple=True, metavar="COLUMN",
              help="Tables: keep only these label columns (repeatable or comma-separated); default all.")
@click.option("--id-prefix", default=None, help="Tables: put this before every id (e.g. ato-), so a second "
                                                 "dataset holds other customers.")
@click.option("--height", type=click.IntRange(min=16), default=None, help="Images: rows per image [default: the "
                                                                           "synthesizer's, 96 for driving_perception, "
                                                                           "64 for medical_imaging].")
@click.option("--width", type=click.IntRange(min=16), default=None, help="Images: columns per image [default: the "
                                                                          "synthesizer's, 128 for driving_perception, "
                                                                          "64 for medical_imaging].")
@click.option("--corrupt", type=click.FloatRange(0, 1, max_open=True), default=None,
              help="Images: fraction of deliberately bad items (corrupt or missing files, out-of-range mask "
                   "classes, boxes outside the image) [default: 0].")
@click.option("--bit-depth", type=click.Choice(["8", "16"]), default=None,
              help="Images (medical_imaging): 16 writes 16-bit detector values [default: 8].")
def synth(name: str, rows: int, out_dir: str, files: int | None, seed: int, malformed: float | None,
          labels: tuple[str, ...], id_prefix: str | None, height: int | None, width: int | None,
          corrupt: float | None, bit_depth: str | None) -> None:
    """Write a synthetic raw dataset NAME: CSV tables (fraud_signals) or images with a manifest
    (driving_perception, medical_imaging).

    A second, smaller dataset of other customers with one label, for a recipe with
    several datasets: --rows 4000 --seed 7 --labels account_takeover --id-prefix ato-

    Road scenes with masks, depth and boxes: driving_perception --rows 1000 --corrupt 0.02

    Chest radiographs with organ and lesion masks and findings: medical_imaging --rows 1200
    (--bit-depth 16 for DICOM-like 16-bit scans)
    """
    from mtl_tf.data.synth import synthesize, synthesize_images, writes_images

    table_options = {"--files": files, "--malformed": malformed, "--labels": labels or None, "--id-prefix": id_prefix}
    image_options = {"--height": height, "--width": width, "--corrupt": corrupt, "--bit-depth": bit_depth}
    images = writes_images(name)
    wrong = [key for key, value in (table_options if images else image_options).items() if value is not None]
    if wrong:
        kind, allowed = ("images", image_options) if images else ("CSV tables", table_options)
        raise click.UsageError(f"{', '.join(wrong)} do not apply to '{name}', which writes {kind}; its options: "
                               f"--rows, --out, --seed, {', '.join(allowed)}")
    if images:
        try:
            manifest = synthesize_images(name, rows=rows, out_dir=out_dir, seed=seed, height=height, width=width,
                                         corrupt=corrupt or 0.0, bit_depth=int(bit_depth) if bit_depth else None)
        except ValueError as err:
            raise click.UsageError(str(err)) from None
        bad = f" ({round(rows * (corrupt or 0.0))} corrupted on purpose)" if corrupt else ""
        click.echo(f"wrote {rows} scenes of {name}{bad} to {out_dir}; manifest {manifest}")
        return
    kept = [part.strip() for item in labels for part in item.split(",") if part.strip()] or None
    paths = synthesize(name, rows=rows, out_dir=out_dir, seed=seed, files=files or 1, malformed=malformed or 0.0,
                       labels=kept, id_prefix=id_prefix or "")
    which = f" (labels: {', '.join(kept)})" if kept else ""
    click.echo(f"wrote {rows} rows of {name}{which} to {len(paths)} file(s) in {out_dir}")


@data.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@recipe_argument
@set_option
@click.option("--out", "out_dir", default=None, type=click.Path(file_okay=False),
              help="Output folder; default the recipe's data.output_dir.")
@click.option("--show-options", is_flag=True,
              help="Print the Beam pipeline options as the runner gets them (JSON), and run nothing.")
@click.argument("beam_args", nargs=-1, type=click.UNPROCESSED)
def preprocess(recipe_path: str, overrides: tuple[str, ...], out_dir: str | None, show_options: bool,
               beam_args: tuple[str, ...]) -> None:
    """Run the Beam pipeline of RECIPE: raw CSV or images -> TFRecords + dataset.json.

    A recipe with `datasets` runs it once per dataset, each into its own output_dir.
    Any Beam pipeline option passes through (--runner, --direct_num_workers, Dataflow,
    Flink, Spark or Dask options; see README "Scaling out"). The runner is always named:
    DirectRunner unless --runner says otherwise.
    """
    from mtl_tf.cluster.runners import with_runner

    recipe = read_recipe(recipe_path, overrides)
    beam = tuple(with_runner(beam_args))
    if show_options:
        from mtl_tf.cluster.runners import resolved_options

        click.echo(json.dumps(resolved_options(beam), indent=1, sort_keys=True, default=str))
        return
    click.echo(f"runner: {beam[0].split('=', 1)[1]}")
    run_preprocess(recipe, out_dir, beam)


def run_preprocess(recipe: Recipe, out_dir: str | None, beam_args: tuple[str, ...]) -> None:
    """The Beam pipeline of ``recipe`` (once per dataset), with its summary lines."""
    if recipe.datasets:
        _preprocess_every_dataset(recipe, out_dir, beam_args)
        return
    from pipelines import run as run_pipeline

    result = run_pipeline(recipe, list(beam_args), out_dir=out_dir)
    click.echo(result.summary())
    for warning in result.spec.label_warnings():
        click.echo(f"warning: {warning}")


def _preprocess_every_dataset(recipe: Recipe, out_dir: str | None, beam_args: tuple[str, ...]) -> None:
    """One Beam run per dataset of ``recipe``, each into its own output_dir."""
    from mtl_tf.data.collection import preprocess_datasets

    if out_dir is not None:
        raise click.UsageError(f"--out names one output folder, but the recipe has {len(recipe.dataset_names)} "
                               f"datasets ({', '.join(recipe.dataset_names)}); received --out {out_dir}; set "
                               "data.output_dir and datasets.N.output_dir with --set instead")
    collection = preprocess_datasets(recipe, list(beam_args), echo=click.echo)
    click.echo(collection.summary())


@data.command()
@click.argument("dataset", type=click.Path(exists=True))
def describe(dataset: str) -> None:
    """Summarise DATASET (a dataset.json or the folder holding it)."""
    from mtl_tf.data.spec import DatasetSpec

    spec = DatasetSpec.read(dataset)
    blank = f", {spec.blank_lines} blank lines skipped" if spec.blank_lines else ""
    click.echo(f"{spec.name}: {spec.rows_in} rows in, {spec.rejects.count} rejected{blank}")
    for split, info in spec.splits.items():
        click.echo(f"  {split}: {info.num_examples} examples in {info.num_shards} shards")
    for task in spec.tasks:
        click.echo(f"  task {task.name} ({task.type}): labelled {task.labelled}, {_label_summary(task)}")
    for feature in spec.features:
        stats = feature.stats
        if feature.kind == "image":
            extra = (f"{' x '.join(map(str, feature.shape))}, mean {[round(m, 1) for m in stats.mean]} "
                     f"sd {[round(s, 1) for s in stats.std]}")
        elif feature.kind == "categorical":
            extra = f"vocabulary {len(feature.vocabulary)} of {stats.unique}"
        else:
            extra = f"mean {stats.mean:.4g} sd {stats.variance ** 0.5:.4g}"
        click.echo(f"  feature {feature.name} ({feature.kind}): missing {stats.missing}, {extra}")


def _label_summary(task) -> str:
    """Positives per split, or a regression label's train mean and std."""
    train = task.stats.train if task.type == "regression" and task.stats is not None else None
    if train is None or train.mean is None:
        return f"positives {task.positives}"
    return f"train mean {train.mean:.6g} sd {train.std:.6g} (min {train.min:.6g}, max {train.max:.6g})"
