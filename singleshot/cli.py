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


def _parse_options(pairs: Sequence[str], reader, what: str) -> dict:
    """``KEY=VALUE`` strings -> keyword arguments of ``reader``, validated against its signature."""
    import difflib
    import inspect

    import yaml

    params = [p for p in inspect.signature(reader).parameters if p != "path"]
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep:
            raise UserError(f"{what} option {pair!r}: expected KEY=VALUE")
        if key not in params:
            close = difflib.get_close_matches(key, params, n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise UserError(f"unknown {what} option {key!r}{hint} (options: {', '.join(params) or 'none'})")
        options[key] = yaml.safe_load(value) if value else None
    return options


def _load_data(spec: str, options: Sequence[str]):
    from singleshot.data.formats import DataError, load_annotations, parse_spec
    from singleshot.registry import DATASET_FORMATS

    try:
        name, _ = parse_spec(spec)
        data = load_annotations(spec, **_parse_options(options, DATASET_FORMATS.get(name), f"{name} format"))
    except DataError as err:
        raise UserError(str(err)) from None
    if data.report.messages:
        summary = data.report.summary() or f"{len(data.report.messages)} note(s)"
        print(f"note: {summary} (first: {data.report.messages[0]})", file=sys.stderr)
    return data


def _cmd_data_stats(args: argparse.Namespace) -> int:
    from singleshot.data.stats import dataset_stats, format_stats

    data = _load_data(args.data, args.data_option)
    stats = dataset_stats(data, long_side=args.long_side or None, check_images=args.check_images)
    print(json.dumps(stats, indent=2) if args.json else format_stats(stats))
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from pathlib import Path

    from singleshot.data.formats import DataError
    from singleshot.evaluation import evaluate, list_protocols
    from singleshot.evaluation.predictions import read_predictions
    from singleshot.evaluation.report import format_table, plot_curves
    from singleshot.registry import EVAL_PROTOCOLS

    data = _load_data(args.data, args.data_option)
    protocol = args.protocol
    if protocol is not None and protocol not in list_protocols():
        raise UserError(f"unknown protocol {protocol!r} (protocols: {', '.join(list_protocols())})")
    try:
        path = Path(args.predictions)
        if path.is_dir():
            from singleshot.evaluation.widerface import read_wider_submission

            predictions = read_wider_submission(path)
        else:
            predictions = read_predictions(path)
        from singleshot.evaluation import DEFAULT_PROTOCOL

        name = protocol or DEFAULT_PROTOCOL.get(data.format, "voc")
        options = _parse_options(args.eval_option, EVAL_PROTOCOLS.get(name), f"{name} protocol")
        if args.present_only:
            if "present_only" not in options and "present_only" in _protocol_params(EVAL_PROTOCOLS.get(name)):
                options["present_only"] = True
            elif "present_only" not in _protocol_params(EVAL_PROTOCOLS.get(name)):
                raise UserError(f"--present-only is not supported by the {name} protocol")
        result = evaluate(data, predictions, protocol=name, **options)
    except DataError as err:
        raise UserError(str(err)) from None
    if args.plot:
        try:
            plot_curves(result, args.plot)
        except RuntimeError as err:
            raise UserError(str(err)) from None
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        print(format_table(result))
        if args.plot:
            print(f"plot: {args.plot}")
    return 0


def _protocol_params(fn) -> list[str]:
    import inspect

    return list(inspect.signature(fn).parameters)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every verb."""
    parser = argparse.ArgumentParser(prog="singleshot", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    models = sub.add_parser("models", help="list registered models with input size, priors, parameters and GFLOPs")
    models.add_argument("names", nargs="*", help="models to describe (default: all)")
    models.add_argument("--json", action="store_true", help="machine-readable output")
    models.set_defaults(func=_cmd_models)

    data = sub.add_parser("data", help="inspect datasets")
    data_sub = data.add_subparsers(dest="data_verb", required=True, metavar="DATA_VERB")
    stats = data_sub.add_parser("stats", help="image and box counts, and the histogram of box sizes")
    stats.add_argument("data", metavar="FORMAT:PATH", help="dataset, e.g. csv:../shared/data/faces/face_counting/val")
    stats.add_argument("--data-option", action="append", default=[], metavar="KEY=VALUE",
                       help="option of the format's reader, e.g. single_class=face, split=val (repeatable)")
    stats.add_argument("--long-side", type=int, default=640,
                       help="also give box sizes after resizing each image to this long side (0: off)")
    stats.add_argument("--check-images", action="store_true", help="decode every image, count unreadable ones")
    stats.add_argument("--json", action="store_true", help="machine-readable output")
    stats.set_defaults(func=_cmd_data_stats)

    ev = sub.add_parser("eval", help="score predictions against ground truth with a standard protocol")
    ev.add_argument("--data", required=True, metavar="FORMAT:PATH", help="ground truth")
    ev.add_argument("--data-option", action="append", default=[], metavar="KEY=VALUE",
                    help="option of the format's reader (repeatable)")
    ev.add_argument("--predictions", required=True, metavar="PATH",
                    help="predictions JSON (docs/formats.md), or a WIDER FACE submission folder")
    ev.add_argument("--protocol", help="widerface, fddb, voc or coco (default: the data format's own, else voc)")
    ev.add_argument("--eval-option", action="append", default=[], metavar="KEY=VALUE",
                    help="option of the protocol, e.g. min_size=16, use_07_metric=true (repeatable)")
    ev.add_argument("--present-only", action="store_true",
                    help="evaluate only the images present on disk (score a subset of WIDER FACE)")
    ev.add_argument("--json", action="store_true", help="machine-readable output")
    ev.add_argument("--plot", metavar="PNG", help="write the precision-recall (or ROC) curves to this file")
    ev.set_defaults(func=_cmd_eval)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``singleshot`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UserError as err:
        print(f"singleshot {args.verb}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"singleshot {args.verb}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
