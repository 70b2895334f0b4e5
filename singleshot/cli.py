"""The ``singleshot`` command line: ``singleshot <verb> [options]``, mirroring the Python API.

Flags are ``--kebab-case`` everywhere. Errors the user can fix are printed as one line on stderr with exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict


class UserError(Exception):
    """A problem with the user's input: printed as one line, no traceback."""


def _cmd_models(args: argparse.Namespace) -> int:
    from singleshot.models import list_models, model_info

    names = args.names or list_models()
    infos = []
    for name in names:
        try:
            infos.append(model_info(name))
        except KeyError as err:
            raise UserError(err.args[0]) from None
    if args.json:
        print(json.dumps([asdict(info) for info in infos], indent=2))
        return 0
    header = f"{'model':<16} {'backbone':<10} {'input HxW':>10} {'classes':>7} {'priors':>7} {'params':>8} {'GFLOPs':>7}  description"
    print(header)
    print("-" * len(header))
    for info in infos:
        size = f"{info.input_size[0]}x{info.input_size[1]}"
        params = f"{info.parameters / 1e6:.2f}M"
        print(
            f"{info.name:<16} {info.backbone:<10} {size:>10} {info.num_classes:>7} {info.num_priors:>7} {params:>8} "
            f"{info.gflops:>7.2f}  {info.description}"
        )
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every verb."""
    parser = argparse.ArgumentParser(prog="singleshot", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    models = sub.add_parser("models", help="list registered models with input size, priors, parameters and GFLOPs")
    models.add_argument("names", nargs="*", help="models to describe (default: all)")
    models.add_argument("--json", action="store_true", help="machine-readable output")
    models.set_defaults(func=_cmd_models)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``singleshot`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UserError as err:
        print(f"singleshot {args.verb}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
