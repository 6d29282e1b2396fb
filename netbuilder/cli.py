"""The ``netbuilder`` command line: one click group; each subsystem contributes its own commands."""
from __future__ import annotations

import os
import sys

import click

from .errors import NetbuilderError


class _Group(click.Group):
    """A click group that turns :class:`NetbuilderError` into one line on stderr and exit code 2."""

    def invoke(self, ctx: click.Context):  # noqa: D401 - click API
        from . import distributed

        try:
            if distributed.init_from_env() and not distributed.is_main():
                # torchrun: rank 0 prints the results; the other ranks keep only stderr (errors, warnings).
                sys.stdout = open(os.devnull, "w")
            return super().invoke(ctx)
        except NetbuilderError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except click.UsageError as exc:
            # One line like every other user error, naming the command for --help.
            cmd = exc.ctx.command_path if exc.ctx else "netbuilder"
            click.echo(f"error: {exc.format_message()} (see `{cmd} --help`)", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        finally:
            distributed.shutdown()


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="netbuilder")
def main() -> None:
    """netbuilder: autoencoders written as JSON; pretrain, cluster, score anomalies, visualize.

    \b
    Quick start (embedded data, no download):
      netbuilder run -d DIGITS -a 0
    Typical workflow:
      netbuilder arch show MNIST -a 1
      netbuilder pretrain -d MNIST -a dcec-l2
      netbuilder cluster  -d MNIST -a dcec-l2 --loss kld
      netbuilder metrics  -d MNIST -a dcec-l2
      netbuilder visualize -d MNIST -a dcec-l2
    """


def _register() -> None:
    # Subsystems register their commands here; imports are local so a broken optional part names itself.
    from .arch.cli import arch
    from .datasets.cli import datasets

    main.add_command(arch)
    main.add_command(datasets)
    try:
        from .stages.cli import register as register_stages
    except ImportError:  # pragma: no cover - while stages are being written
        return
    register_stages(main)


_register()

if __name__ == "__main__":  # pragma: no cover
    main()
