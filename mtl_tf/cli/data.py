"""`mtl data`: synthetic raw data, Beam preprocessing, dataset inspection."""

from __future__ import annotations

import click

from mtl_tf.cli.options import read_recipe, recipe_argument, set_option


@click.group()
def data() -> None:
    """Make, preprocess and inspect datasets."""


@data.command()
@click.argument("name")
@click.option("--rows", type=click.IntRange(min=1), default=20000, show_default=True)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Folder for the CSV files.")
@click.option("--files", type=click.IntRange(min=1), default=1, show_default=True, help="CSV files to spread rows over.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--malformed", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Fraction of deliberately malformed rows (to exercise the rejects path).")
def synth(name: str, rows: int, out_dir: str, files: int, seed: int, malformed: float) -> None:
    """Write a synthetic raw dataset NAME as CSV (e.g. fraud_signals)."""
    from mtl_tf.data.synth import synthesize

    paths = synthesize(name, rows=rows, out_dir=out_dir, seed=seed, files=files, malformed=malformed)
    click.echo(f"wrote {rows} rows of {name} to {len(paths)} file(s) in {out_dir}")


@data.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@recipe_argument
@set_option
@click.option("--out", "out_dir", default=None, type=click.Path(file_okay=False),
              help="Output folder; default the recipe's data.output_dir.")
@click.argument("beam_args", nargs=-1, type=click.UNPROCESSED)
def preprocess(recipe_path: str, overrides: tuple[str, ...], out_dir: str | None, beam_args: tuple[str, ...]) -> None:
    """Run the Beam pipeline of RECIPE: raw CSV -> TFRecords + dataset.json.

    Any Beam pipeline option passes through (--runner, --direct_num_workers, Dataflow or
    Flink options). DirectRunner by default.
    """
    from pipelines.csv_to_tfrecords import run as run_pipeline

    recipe = read_recipe(recipe_path, overrides)
    result = run_pipeline(recipe, list(beam_args), out_dir=out_dir)
    click.echo(result.summary())


@data.command()
@click.argument("dataset", type=click.Path(exists=True))
def describe(dataset: str) -> None:
    """Summarise DATASET (a dataset.json or the folder holding it)."""
    from mtl_tf.data.spec import DatasetSpec

    spec = DatasetSpec.read(dataset)
    click.echo(f"{spec.name}: {spec.rows_in} rows in, {spec.rejects.count} rejected")
    for split, info in spec.splits.items():
        click.echo(f"  {split}: {info.num_examples} examples in {info.num_shards} shards")
    for task in spec.tasks:
        click.echo(f"  task {task.name} ({task.type}): labelled {task.labelled}, positives {task.positives}")
    for feature in spec.features:
        stats = feature.stats
        extra = (f"vocabulary {len(feature.vocabulary)} of {stats.unique}" if feature.kind == "categorical"
                 else f"mean {stats.mean:.4g} sd {stats.variance ** 0.5:.4g}")
        click.echo(f"  feature {feature.name} ({feature.kind}): missing {stats.missing}, {extra}")
