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
    header = f"{'model':<20} {'backbone':<18} {'input HxW':>10} {'classes':>7} {'priors':>7} {'params':>8} {'GFLOPs':>7} {'ImageNet':>13}  description"
    print(header)
    print("-" * len(header))
    for info in infos:
        size = f"{info.input_size[0]}x{info.input_size[1]}"
        params = f"{info.parameters / 1e6:.2f}M"
        print(
            f"{info.name:<20} {info.backbone:<18} {size:>10} {info.num_classes:>7} {info.num_priors:>7} {params:>8} "
            f"{info.gflops:>7.2f} {info.pretrained:>13}  {info.description}"
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


def _predict_dataset(data, args: argparse.Namespace) -> dict:
    """Run the checkpoint of ``args.weights`` over every image of ``data`` (predictions in original pixels)."""
    from tqdm import tqdm

    from singleshot.data.cache import decode_image
    from singleshot.evaluation.predictions import write_predictions

    detector = _load_detector(args.weights, args.input_size, args.threads)
    predictions, missing = {}, 0
    for sample in tqdm(data.samples, desc="detecting", unit="img"):
        decoded = decode_image(sample.image_path)
        if decoded is None:
            missing += 1
            continue
        det = detector.detect(decoded[0], min_score=args.min_score, max_overlap=args.max_overlap, top_k=args.top_k)
        predictions[sample.key] = det.to_rows()
    if missing:
        print(f"note: {missing} image(s) missing or unreadable, scored as without detections", file=sys.stderr)
    if args.save_predictions:
        write_predictions(args.save_predictions, predictions)
    return predictions


def _cmd_eval(args: argparse.Namespace) -> int:
    from pathlib import Path

    from singleshot.data.formats import DataError
    from singleshot.evaluation import DEFAULT_PROTOCOL, evaluate, list_protocols
    from singleshot.evaluation.predictions import read_predictions
    from singleshot.evaluation.report import format_table, plot_curves
    from singleshot.registry import EVAL_PROTOCOLS

    data = _load_data(args.data, args.data_option)
    if (args.predictions is None) == (args.weights is None):
        raise UserError("give either --predictions FILE (saved predictions) or --weights CKPT (run a model)")
    # Check the protocol and its options before any (possibly long) detection run.
    name = args.protocol or DEFAULT_PROTOCOL.get(data.format, "voc")
    if name not in list_protocols():
        raise UserError(f"unknown protocol {name!r} (protocols: {', '.join(list_protocols())})")
    options = _parse_options(args.eval_option, EVAL_PROTOCOLS.get(name), f"{name} protocol")
    if args.present_only:
        if "present_only" not in _protocol_params(EVAL_PROTOCOLS.get(name)):
            raise UserError(f"--present-only is not supported by the {name} protocol")
        options["present_only"] = True
    try:
        if args.weights is not None:
            predictions = _predict_dataset(data, args)
        elif Path(args.predictions).is_dir():
            from singleshot.evaluation.widerface import read_wider_submission

            predictions = read_wider_submission(Path(args.predictions))
        else:
            predictions = read_predictions(Path(args.predictions))
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


def _cmd_train(args: argparse.Namespace) -> int:
    from singleshot.config import ConfigError, load_config
    from singleshot.data.formats import DataError
    from singleshot.engine.checkpoint import CheckpointError
    from singleshot.engine.trainer import Trainer

    try:
        config = load_config(args.config, args.set)
        if args.out_dir:
            config.train.out_dir = args.out_dir
        state = Trainer(config, progress=not args.no_progress).fit(resume=args.resume)
    except (ConfigError, DataError, CheckpointError) as err:
        raise UserError(str(err)) from None
    print(f"done: epoch {state.epoch}, iteration {state.iteration}, best val AP {state.best_ap:.4f} "
          f"(epoch {state.best_epoch}); checkpoints in {config.train.out_dir}")
    return 0


def _image_sources(sources: Sequence[str]) -> list[tuple[object, str]]:
    """``(path, key)`` of every image named: files keep their file name, folders give paths relative to them."""
    from pathlib import Path

    from singleshot.data.formats.folder import IMAGE_SUFFIXES, find_images

    items = []
    for source in sources:
        path = Path(source)
        if path.is_dir():
            images = find_images(path)
            if not images:
                raise UserError(f"{path}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
            items += [(p, p.relative_to(path).as_posix()) for p in images]
        elif path.is_file():
            items.append((path, path.name))
        else:
            raise UserError(f"{path}: no such file or folder")
    return items


def _load_detector(weights, input_size: int, threads: int | None):
    from singleshot.engine.checkpoint import CheckpointError
    from singleshot.predictor import Detector

    try:
        return Detector(weights, input_size=input_size, threads=threads)
    except CheckpointError as err:
        raise UserError(str(err)) from None


def _cmd_detect(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    import cv2
    from tqdm import tqdm

    from singleshot.data.cache import decode_image
    from singleshot.evaluation.predictions import write_predictions
    from singleshot.predictor import draw_detections

    items = _image_sources(args.sources)
    detector = _load_detector(args.weights, args.input_size, args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    predictions, skipped, faces, seconds = {}, 0, 0, 0.0
    for path, key in tqdm(items, desc="detecting", unit="img", disable=len(items) < 2):
        decoded = decode_image(path)
        if decoded is None:
            print(f"{path}: cannot read the image; skipped", file=sys.stderr)
            skipped += 1
            continue
        image = decoded[0]
        start = time.perf_counter()
        det = detector.detect(image, min_score=args.min_score, max_overlap=args.max_overlap, top_k=args.top_k)
        seconds += time.perf_counter() - start
        faces += len(det)
        predictions[key] = det.to_rows()
        target = out / key
        target.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(target.with_suffix(".jpg") if target.suffix.lower() not in (".jpg", ".jpeg", ".png") else target),
                    draw_detections(image, det, detector.class_names))
        if len(items) < 2:
            print(f"{key}: {len(det)} detection(s)")
    write_predictions(out / "detections.json", predictions)
    done = len(items) - skipped
    fps = done / seconds if seconds else 0.0
    print(f"{done} image(s), {faces} detection(s) at min_score {args.min_score}, input long side {args.input_size}: "
          f"{1000 * seconds / max(done, 1):.1f} ms/image ({fps:.1f} FPS, decode excluded); "
          f"annotated images and detections.json in {out}")
    return 0 if done else 2


def _cmd_export(args: argparse.Namespace) -> int:
    from pathlib import Path

    from singleshot.engine.checkpoint import CheckpointError, export_weights

    target = Path(args.output)
    if target.suffix != ".pt":
        raise UserError(f"{target}: only weights-only PyTorch checkpoints (.pt) can be exported so far")
    try:
        path = export_weights(args.weights, target)
    except CheckpointError as err:
        raise UserError(str(err)) from None
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB, weights only)")
    return 0


def _protocol_params(fn) -> list[str]:
    import inspect

    return list(inspect.signature(fn).parameters)


def _add_inference_options(parser: argparse.ArgumentParser, min_score: float, prefix: str = "") -> None:
    """The options of running a detector, shared by ``detect`` and ``eval --weights``."""
    parser.add_argument("--min-score", type=float, default=min_score, help=f"{prefix}lowest score kept ({min_score})")
    parser.add_argument("--max-overlap", type=float, default=0.45, help=f"{prefix}NMS IoU threshold (0.45)")
    parser.add_argument("--top-k", type=int, default=200, help=f"{prefix}most detections per image (200)")
    parser.add_argument("--input-size", type=int, default=640, help=f"{prefix}long side of inference, aspect kept (640)")
    parser.add_argument("--threads", type=int, default=None, help=f"{prefix}torch threads")


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
    ev.add_argument("--predictions", metavar="PATH",
                    help="predictions JSON (docs/formats.md), or a WIDER FACE submission folder")
    ev.add_argument("--weights", metavar="CKPT", help="evaluate a checkpoint directly (runs it on every image)")
    _add_inference_options(ev, min_score=0.02, prefix="with --weights: ")
    ev.add_argument("--save-predictions", metavar="JSON", help="with --weights: also write the predictions")
    ev.add_argument("--protocol", help="widerface, fddb, voc or coco (default: the data format's own, else voc)")
    ev.add_argument("--eval-option", action="append", default=[], metavar="KEY=VALUE",
                    help="option of the protocol, e.g. min_size=16, use_07_metric=true (repeatable)")
    ev.add_argument("--present-only", action="store_true",
                    help="evaluate only the images present on disk (score a subset of WIDER FACE)")
    ev.add_argument("--json", action="store_true", help="machine-readable output")
    ev.add_argument("--plot", metavar="PNG", help="write the precision-recall (or ROC) curves to this file")
    ev.set_defaults(func=_cmd_eval)

    detect = sub.add_parser("detect", help="find faces (or a checkpoint's classes) in images and folders")
    detect.add_argument("sources", nargs="+", metavar="SOURCE", help="image files and folders (searched recursively)")
    detect.add_argument("--weights", help="checkpoint (default: the face model bundled with the package)")
    _add_inference_options(detect, min_score=0.5)
    detect.add_argument("--out", default="detections", help="folder for annotated images and detections.json")
    detect.set_defaults(func=_cmd_detect)

    export = sub.add_parser("export", help="write a deployable copy of a checkpoint")
    export.add_argument("--weights", required=True, metavar="CKPT", help="training or weights checkpoint")
    export.add_argument("-o", "--output", required=True, metavar="FILE", help="output file (.pt: weights only)")
    export.set_defaults(func=_cmd_export)

    train = sub.add_parser("train", help="train a model from a YAML config")
    train.add_argument("config", nargs="?", help="YAML config (e.g. configs/face_slim.yaml); defaults if omitted")
    train.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                       help="override a config value, e.g. --set train.lr=0.01 (repeatable, validated)")
    train.add_argument("--resume", metavar="CKPT", help="continue exactly from a training checkpoint (last.pt)")
    train.add_argument("--out-dir", help="run folder (same as --set train.out_dir=...)")
    train.add_argument("--no-progress", action="store_true", help="no progress bars (logs still written)")
    train.set_defaults(func=_cmd_train)
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
