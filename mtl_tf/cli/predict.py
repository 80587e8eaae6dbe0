"""`mtl predict`: answers for raw rows from a registered model, here or through TF Serving."""

from __future__ import annotations

import os
import sys

import click

from mtl_tf.cli.options import tracking_uri_option


@click.command()
@click.option("--model-uri", "model_uri", required=True, metavar="models:/NAME@ALIAS|models:/NAME/VERSION",
              help="The registered version (models:/ optional).")
@click.option("--input", "input_path", required=True, type=click.Path(),
              help="Raw rows: .csv (the recipe's CSV layout) or .jsonl (one object per line, keyed by column). "
                   "Image recipes: a manifest (.csv or .jsonl, image paths relative to it, plus the other "
                   "feature columns) or a folder of images (the recipe's only feature being the image).")
@click.option("--format", "input_kind", type=click.Choice(["csv", "jsonl"]), default=None,
              help="Input format; default from the file's suffix.")
@click.option("--task", default=None, help="Answer one task through its predict_<task> signature.")
@click.option("--output", "output_path", default=None, type=click.Path(dir_okay=False),
              help="JSON lines out, one object per input row; default stdout. Image recipes: masks and depth "
                   "maps go as PNG files to a folder beside it named after it (answers.jsonl -> answers/), "
                   "the JSON holding their paths; on stdout the JSON holds a summary of each instead "
                   "(pixels per class, depth min/mean/max).")
@click.option("--min-score", type=click.FloatRange(0.0, 1.0), default=0.3, show_default=True,
              help="Image recipes: detections with a lower score are left out; boxes are [x_min, y_min, "
                   "x_max, y_max] in the input image's pixels.")
@click.option("--server", default=None, metavar="HOST:PORT",
              help="Send the requests to TF Serving (REST 8501 or gRPC 8500) instead of answering here.")
@click.option("--protocol", type=click.Choice(["rest", "grpc"]), default="rest", show_default=True,
              help="With --server: REST, or gRPC (needs the 'serving' extra).")
@click.option("--served-name", default=None, help="With --server: the served model name; default the registered name.")
@click.option("--label", default=None,
              help="With --server: the version label to ask for; default the alias's (champion -> stable).")
@click.option("--label-map", "labels", multiple=True, metavar="ALIAS=LABEL",
              help="With --server: alias -> label, as given to `mtl models deploy --label-map`.")
@click.option("--batch-size", type=click.IntRange(min=1), default=256, show_default=True, help="Rows per request.")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=30.0, show_default=True,
              help="Seconds per request to a server.")
@tracking_uri_option
def predict(model_uri: str, input_path: str, input_kind: str | None, task: str | None, output_path: str | None,
            min_score: float, server: str | None, protocol: str, served_name: str | None, label: str | None,
            labels: tuple[str, ...], batch_size: int, timeout: float, tracking_uri: str | None) -> None:
    """Answer every row of --input with a registered model, one JSON object per row.

    Rows become tf.Examples exactly as the Beam pipeline writes them (the recipe and
    dataset.json the version was trained with are read from its run) and go to the
    serving_default signature, or predict_<task> with --task. A row that cannot be
    converted gets {"row", "error", "kind"}; the other rows are still answered.

    Image recipes: each image is read, converted and resized as the image pipeline does;
    its object also holds "image" (the input path). Masks and depth maps are files with
    --output and summaries on stdout; detections are boxes in the input image's pixels.
    """
    from mtl_tf.serving.answers import dense_folder
    from mtl_tf.serving.labels import parse_label_mapping
    from mtl_tf.serving.predict import Target, run_predict
    from mtl_tf.serving.reference import parse_model_ref

    if server is None and (served_name or label or labels or protocol != "rest"):
        raise click.UsageError("--protocol, --served-name, --label and --label-map apply with --server HOST:PORT")
    ref = parse_model_ref(model_uri)
    target = Target(server=server, protocol=protocol, served_name=served_name, timeout=timeout)
    folder = dense_folder(output_path) if output_path else None
    handle = open(output_path, "w") if output_path else sys.stdout
    try:
        summary = run_predict(ref, input_path, handle, task=task, input_kind=input_kind, target=target,
                              tracking_uri=tracking_uri, batch_size=batch_size,
                              mapping=parse_label_mapping(labels), label=label, dense_dir=folder,
                              min_score=min_score)
    finally:
        if output_path:
            handle.close()
    written = f"; masks and depth maps in {folder}{os.sep}" if summary.files else ""
    click.echo(f"{summary.line()}" + (f"; answers in {output_path}{written}" if output_path else ""),
               err=not output_path)
