"""Entry point of `mtl`: library errors become one line and a non-zero exit, never a traceback.

The command modules import TensorFlow only inside their commands, so :func:`main` quiets
TensorFlow's start-up (:mod:`mtl_tf.cli.quiet`) before anything imports it.
"""

from __future__ import annotations

import sys

import click

from mtl_tf import __version__

# Library errors a user can fix from the command line.
USER_ERRORS = (ValueError, TypeError, KeyError, FileNotFoundError, PermissionError)


class MtlGroup(click.Group):
    """A group that turns library errors into one clear line."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except click.exceptions.Exit:
            raise
        except click.ClickException:
            raise
        except USER_ERRORS as err:
            message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
            raise click.ClickException(str(message)) from None


@click.group(cls=MtlGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mtl")
def cli() -> None:
    """mtl_tf: multi-task learning from raw data to a registered, servable model."""


def _register() -> None:
    from mtl_tf.cli import analyze, baseline, cluster, data, models, pipeline, predict, recipes, run, tracking

    cli.add_command(recipes.recipes)
    cli.add_command(data.data)
    cli.add_command(run.run)
    cli.add_command(baseline.baseline)
    cli.add_command(analyze.analyze)
    cli.add_command(models.models)
    cli.add_command(predict.predict)
    cli.add_command(pipeline.pipeline)
    cli.add_command(cluster.cluster)
    cli.add_command(tracking.tracking)


_register()


def main() -> None:
    from mtl_tf.cli.quiet import quiet_tensorflow

    quiet_tensorflow()
    cli(prog_name="mtl")


if __name__ == "__main__":
    sys.exit(main())
