"""`mtl models`: the MLflow model registry (versions, aliases, promotion gate)."""

from __future__ import annotations

import json
import math

import click

from mtl_tf.cli.options import tracking_uri_option


def _connect(tracking_uri: str | None) -> str:
    import mlflow

    from mtl_tf.tracking.uri import resolve_tracking_uri

    uri = resolve_tracking_uri(tracking_uri)
    mlflow.set_tracking_uri(uri)
    return uri


@click.group()
def models() -> None:
    """List, describe and promote registered models."""


@models.command("list")
@tracking_uri_option
def list_(tracking_uri: str | None) -> None:
    """List registered models with their latest version and aliases."""
    from mtl_tf.tracking.registry import list_models

    _connect(tracking_uri)
    rows = list_models()
    if not rows:
        click.echo("no registered models")
    for row in rows:
        aliases = ", ".join(f"{alias}=v{version}" for alias, version in sorted(row.get("aliases", {}).items()))
        click.echo(f"{row['name']}: latest v{row.get('latest_version')}" + (f"  [{aliases}]" if aliases else ""))


@models.command()
@click.argument("name")
@tracking_uri_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def describe(name: str, tracking_uri: str | None, as_json: bool) -> None:
    """Describe registered model NAME: versions, aliases, metrics, export location."""
    from mtl_tf.tracking.registry import describe_model

    _connect(tracking_uri)
    info = describe_model(name)
    if as_json:
        click.echo(json.dumps(info, indent=2, default=str))
        return
    aliases = ", ".join(f"{alias}=v{version}" for alias, version in sorted(info["aliases"].items()))
    click.echo(f"{info['name']}  aliases: {aliases or '-'}")
    for version in info["versions"]:
        held = f"  [{', '.join(version['aliases'])}]" if version["aliases"] else ""
        click.echo(f"  v{version['version']}{held}  run {version['run_id']}")
        for task, row in version["primary"].items():
            shown = _fmt(row.get("value"))
            direction = "higher" if row.get("higher_is_better", True) else "lower"
            click.echo(f"      {task}: {row['metric']} {shown} ({direction} is better)")
        if version["tags"].get("export_location"):
            click.echo(f"      export: {version['tags']['export_location']}")
        reason = next((v for k, v in version["tags"].items() if k.endswith(".reason")), None)
        if reason:
            click.echo(f"      forced promotion reason: {reason}")


@models.command()
@click.argument("name")
@click.argument("version", type=int)
@click.option("--alias", default="champion", show_default=True)
@click.option("--force", is_flag=True, help="Promote despite a regression (needs --reason).")
@click.option("--reason", default=None, help="Why a forced promotion is acceptable; recorded as a tag.")
@click.option("--tolerance", type=float, default=0.002, show_default=True,
              help="Allowed drop of a primary metric before the gate refuses.")
@click.option("--expect-current", default=None, metavar="VERSION|none",
              help="Refuse unless ALIAS points at this version now ('none': at no version).")
@tracking_uri_option
def promote(name: str, version: int, alias: str, force: bool, reason: str | None,
            tolerance: float, expect_current: str | None, tracking_uri: str | None) -> None:
    """Point ALIAS of model NAME at VERSION, if it does not regress any task.

    Refused (unless --force --reason TEXT) when a task's primary metric regresses beyond
    --tolerance, when VERSION's primary metric is missing or undefined, or when nothing can
    be compared with the current holder. Of two promotions of one alias at the same time,
    one moves it and the other is refused saying why (nothing changed).
    """
    from mtl_tf.tracking.promotion import PromotionNotRecorded, PromotionRefused
    from mtl_tf.tracking.promotion import promote as promote_version

    if force and not (reason or "").strip():
        raise click.UsageError("--force needs --reason TEXT: the reason is recorded on the version so the "
                               "registry shows why the gate was overridden")
    _connect(tracking_uri)
    try:
        result = promote_version(name, version, alias=alias, force=force, reason=reason, tolerance=tolerance,
                                 expect_current=expect_current)
    except PromotionRefused as refused:
        raise click.ClickException(f"{refused.details}\nrerun with --force --reason TEXT to promote anyway") from None
    except PromotionNotRecorded as error:
        raise click.ClickException(str(error)) from None
    previous = f"v{result.previous}" if result.previous is not None else "nobody"
    click.echo(f"{name}: alias '{alias}' moved from {previous} to v{result.version}"
               + (f" (forced: {result.reason})" if result.forced else ""))
    for problem in result.overridden:
        click.echo(f"  overridden: {problem}")
    for task, row in result.comparison.items():
        note = {"regressed": "  REGRESSED", "not_compared": f"  not compared: {row['note']}"}.get(row["status"], "")
        click.echo(f"  {task}: {row['metric']} {_fmt(row['current'])} -> {_fmt(row['candidate'])}{note}")


def _fmt(value: float | None) -> str:
    if value is None:
        return "missing"
    return "undefined" if math.isnan(value) else f"{value:.4f}"


@models.command()
@click.argument("model", metavar="NAME@ALIAS|NAME/VERSION", required=False)
@click.option("--to", "root", required=True, type=click.Path(file_okay=False),
              help="Deployment folder: <model>/<version>/ per version, models.config, deploy.json.")
@click.option("--finalize", is_flag=True,
              help="Step 2: move the labels the last deploy left pending, once the server has loaded their versions.")
@click.option("--server", default=None, metavar="HOST:PORT",
              help="With --finalize: TF Serving's REST address; refuse unless it reports the versions AVAILABLE.")
@click.option("--label-map", "labels", multiple=True, metavar="ALIAS=LABEL",
              help="Alias -> version label (repeatable or comma-separated); default champion=stable,challenger=canary.")
@click.option("--keep", type=click.IntRange(min=1), default=None,
              help="Keep this many versions; older ones no label points at are removed. Default: keep all.")
@click.option("--base-path", default=None, metavar="PATH",
              help="Where the server finds the model folders (default /models, as in k8s/; a gs:// path for a bucket).")
@click.option("--name", "served_name", default=None, help="Served model name; default the registered name.")
@tracking_uri_option
def deploy(model: str | None, root: str, finalize: bool, server: str | None, labels: tuple[str, ...],
           keep: int | None, base_path: str | None, served_name: str | None, tracking_uri: str | None) -> None:
    """Lay a registered version out for TensorFlow Serving and write its models.config.

    The version goes to DIR/<model>/<version>/ (the registry version number) and
    DIR/models.config lists it beside the versions already served, with version labels
    that mirror the registry's aliases. A label that moves to a newly listed version
    waits for step 2, since TF Serving labels only loaded versions:

    \b
      mtl models deploy fraud_signals@champion --to deploy/     # step 1: list v3
      mtl models deploy --to deploy/ --finalize                 # step 2: stable -> v3
    """
    from mtl_tf.serving.deploy import deploy as deploy_version
    from mtl_tf.serving.deploy import finalize as finalize_labels
    from mtl_tf.serving.labels import parse_label_mapping
    from mtl_tf.serving.reference import parse_model_ref

    if finalize:
        if model is not None or labels or base_path or served_name:
            raise click.UsageError("--finalize moves the labels already planned in --to DIR; it takes no model, "
                                   "--label-map, --base-path or --name")
        result = finalize_labels(root, keep=keep, server=server)
    else:
        if model is None:
            raise click.UsageError("name the version to deploy (NAME@ALIAS or NAME/VERSION), or pass --finalize")
        if server is not None:
            raise click.UsageError("--server checks the versions before --finalize; it does nothing on step 1")
        _connect(tracking_uri)
        result = deploy_version(parse_model_ref(model), root, tracking_uri=tracking_uri,
                                mapping=parse_label_mapping(labels), keep=keep, base_path=base_path,
                                served_name=served_name, echo=click.echo)
    click.echo(result.summary())
