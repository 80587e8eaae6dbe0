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
@tracking_uri_option
def promote(name: str, version: int, alias: str, force: bool, reason: str | None,
            tolerance: float, tracking_uri: str | None) -> None:
    """Point ALIAS of model NAME at VERSION, if it does not regress any task.

    Refused (unless --force --reason TEXT) when a task's primary metric regresses beyond
    --tolerance, when VERSION's primary metric is missing or undefined, or when nothing can
    be compared with the current holder.
    """
    from mtl_tf.tracking.promotion import PromotionNotRecorded, PromotionRefused
    from mtl_tf.tracking.promotion import promote as promote_version

    if force and not (reason or "").strip():
        raise click.UsageError("--force needs --reason TEXT: the reason is recorded on the version so the "
                               "registry shows why the gate was overridden")
    _connect(tracking_uri)
    try:
        result = promote_version(name, version, alias=alias, force=force, reason=reason, tolerance=tolerance)
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
