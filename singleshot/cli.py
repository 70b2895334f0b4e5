"""The ``singleshot`` command line: ``singleshot <verb> [options]``, mirroring the Python API.

Flags are ``--kebab-case`` everywhere. Errors the user can fix are printed as one line on stderr with exit code 2.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from singleshot.errors import SingleshotError


class UserError(SingleshotError):
    """A problem with the user's input: printed as one line, no traceback."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors (unknown flag, bad value) are one-line :class:`UserError` s like the rest."""

    def error(self, message: str):
        raise UserError(f"{message} (see {self.prog} --help)")


def _cmd_models(args: argparse.Namespace) -> int:
    from singleshot.models import list_models, model_info

    names = args.names or list_models()
    infos = [model_info(name) for name in names]
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

    from singleshot.data.formats import HOLD_OUT_OPTIONS

    params = [p for p in inspect.signature(reader).parameters if p != "path"]
    if what.endswith(" format"):
        params += HOLD_OUT_OPTIONS  # taken by every format (load_annotations)
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


def _data_options(spec: str, pairs: Sequence[str]) -> dict:
    """``--data-option KEY=VALUE`` pairs -> keyword arguments of the reader of ``spec``'s format, validated."""
    from singleshot.data.formats import parse_spec
    from singleshot.registry import DATASET_FORMATS

    name, _ = parse_spec(spec)
    return _parse_options(pairs, DATASET_FORMATS.get(name), f"{name} format")


def _load_data(spec: str, options: Sequence[str]):
    from singleshot.data.formats import load_annotations

    data = load_annotations(spec, **_data_options(spec, options))
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


def _cmd_data_points(args: argparse.Namespace) -> int:
    from singleshot.data.formats.simple import write_csv
    from singleshot.kindle import attach_points

    boxes = _load_data(args.boxes, args.data_option)
    merged, report = attach_points(boxes, _load_data(args.points, []), min_iou=args.min_iou)
    path = write_csv(merged, Path(args.out))
    print(f"{report.line()}; dataset: csv:{path}")
    return 0


def _cmd_data_combine(args: argparse.Namespace) -> int:
    from singleshot.data.formats.simple import write_csv
    from singleshot.kindle import combine_human_points

    combined, report = combine_human_points(_load_data(args.teacher, []), _load_data(args.human, args.data_option),
                                            missed=args.missed)
    path = write_csv(combined, Path(args.out))
    print(f"{report.line()}; dataset: csv:{path}")
    return 0


def _predict_dataset(data, args: argparse.Namespace) -> dict:
    """Run the checkpoint of ``args.weights`` over every image of ``data`` (predictions in original pixels)."""
    from singleshot.evaluation.predictions import write_predictions
    from singleshot.inference import predict_dataset

    # boxes are what is scored: no point network
    detector = _load_detector(args, points=None)
    predictions, missing = predict_dataset(
        lambda images: detector.detect(images, min_score=args.min_score, max_overlap=args.max_overlap,
                                       top_k=args.top_k),
        data, batch_size=1,
    )
    if missing:
        print(f"note: {missing} image(s) missing or unreadable, scored as without detections", file=sys.stderr)
    if args.save_predictions:
        write_predictions(args.save_predictions, predictions)
    return predictions


def _cmd_eval(args: argparse.Namespace) -> int:

    from singleshot.evaluation import DEFAULT_PROTOCOL, evaluate, list_protocols
    from singleshot.evaluation.predictions import load_predictions
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
    if args.weights is not None:
        predictions = _predict_dataset(data, args)
    else:
        predictions = load_predictions(args.predictions)
    result = evaluate(data, predictions, protocol=name, **options)
    if args.plot:
        plot_curves(result, args.plot)
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        print(format_table(result))
        if args.plot:
            print(f"plot: {args.plot}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from singleshot.config import load_config
    from singleshot.engine.state import resume_config
    from singleshot.engine.trainer import Trainer

    # a resume continues with the run's own config (checked before any data is read), or checks CONFIG against it
    config = resume_config(args.resume, args.config, args.set) if args.resume else load_config(args.config, args.set)
    if args.out:
        config.train.out_dir = args.out
    state = Trainer(config, progress=not args.no_progress).fit(resume=args.resume)
    if os.environ.get("RANK", "0") != "0":  # under torchrun, rank 0 alone reports (it wrote the run folder)
        return 0
    best = (f"best val AP {state.best_ap:.4f} (epoch {state.best_epoch})" if state.best_epoch >= 0
            else "not validated yet")
    print(f"done: epoch {state.epoch}, iteration {state.iteration}, {best}; checkpoints in {config.train.out_dir}")
    return 0


def _load_detector(args: argparse.Namespace, points: str | None = "auto"):
    """The detector of the shared inference options (``_add_inference_options``)."""
    from singleshot.predictor import Detector

    return Detector(args.weights, input_size=args.input_size, threads=args.threads, runtime=args.runtime,
                    box_vote=not args.no_box_vote, points=None if points == "off" else points,
                    large_face_pass=args.large_face_pass)


def _cmd_detect(args: argparse.Namespace) -> int:
    import time

    import cv2
    from tqdm import tqdm

    from singleshot.atomic import write_text
    from singleshot.batch import image_sources, rows_to_original
    from singleshot.evaluation.predictions import write_predictions
    from singleshot.images import decode_image, image_problem
    from singleshot.landmarks import align_faces, blur_faces
    from singleshot.predictor import draw_detections
    from singleshot.video import detect_video, is_video_source

    if not args.sources and args.source is None:
        raise UserError("give image files, folders or videos, or --source CAMERA_INDEX|VIDEO")
    if args.engine == "ray" or args.format == "parquet":
        return _detect_batch(args)
    sources = list(args.sources) + ([args.source] if args.source is not None else [])
    videos = [s for s in sources if is_video_source(s)]
    stills = [s for s in sources if s not in videos]
    items = image_sources(stills) if stills else []
    for v in videos:
        if not v.isdigit() and not Path(v).is_file():
            raise UserError(f"{v}: no such video file")
    if args.batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {args.batch_size}")
    detector = _load_detector(args, args.points)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    attributes = [a.strip() for a in (args.attributes or "").split(",") if a.strip()]
    options = {"min_score": args.min_score, "max_overlap": args.max_overlap, "top_k": args.top_k,
               "attributes": attributes}
    for name in attributes:  # load (and check) every attribute before the first image
        detector.attribute(name)
    crops_dir = Path(args.crops) if args.crops else None
    if crops_dir is not None:
        if not detector.has_landmarks and detector.point_refiner is None:
            raise UserError(f"--crops aligns faces by their five landmarks: {detector.weights} has no landmark head "
                            f"and --points is off")
        crops_dir.mkdir(parents=True, exist_ok=True)
    predictions, skipped, faces, seconds, done = {}, 0, 0, 0.0, 0
    attribute_values: dict[str, dict[str, list[float]]] = {}
    # many images run in batches (one network call per batch); a batch is padded to its largest image
    batches = [items[i : i + args.batch_size] for i in range(0, len(items), args.batch_size)]
    bar = tqdm(total=len(items), desc="detecting", unit="img", disable=len(items) < 2)
    for batch in batches:
        images, keys = [], []
        for path, key in batch:
            # a JPEG over the pixel limit is decoded reduced (said on stderr), its boxes scaled back below
            decoded = decode_image(path, on_reduce=lambda message, p=path: print(f"{p}: {message}", file=sys.stderr))
            if decoded is None:
                print(f"{path}: {image_problem(path) or 'cannot read the image'}; skipped", file=sys.stderr)
                skipped += 1
                continue
            images.append(decoded[0])
            keys.append((key, decoded[1][1] / decoded[0].shape[1], decoded[1][0] / decoded[0].shape[0]))
        bar.update(len(batch))
        if not images:
            continue
        start = time.perf_counter()
        dets = detector.detect(images, **options)
        seconds += time.perf_counter() - start
        for image, (key, fx, fy), det in zip(images, keys, dets):
            faces += len(det)
            done += 1
            # decoded reduced: detections.json is in the original image's pixels
            predictions[key] = rows_to_original(det.to_rows(), fx, fy)
            if det.attributes:
                attribute_values[key] = {n: [round(float(v), 4) for v in p] for n, p in det.attributes.items()}
            target = out / key
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.suffix.lower() not in (".jpg", ".jpeg", ".png"):
                target = target.with_suffix(".jpg")
            if args.blur:  # anonymised copies instead of annotated ones
                picture = cv2.cvtColor(blur_faces(image, det.boxes_xyxy.numpy(), mode=args.blur), cv2.COLOR_RGB2BGR)
            else:
                picture = draw_detections(image, det, detector.class_names)
            cv2.imwrite(str(target), picture)
            if args.crops:
                crops_dir.joinpath(key).parent.mkdir(parents=True, exist_ok=True)
                for n, crop in enumerate(align_faces(image, det.landmarks.numpy())):
                    cv2.imwrite(str(crops_dir / f"{Path(key).with_suffix('')}_{n}.jpg"), crop[:, :, ::-1])
            if len(items) < 2:
                print(f"{key}: {len(det)} detection(s)")
    bar.close()
    for video in videos:
        report = detect_video(detector, video, out, predictions, max_frames=args.max_frames, show=args.show,
                              **options)
        print(f"{report.name}: {report.frames} frames, {report.detections} detection(s), "
              f"{report.frames / report.seconds if report.seconds else 0:.1f} FPS"
              + (f"; video in {report.video}" if report.video else ""))
        done += report.frames
        faces += report.detections
        seconds += report.seconds
    write_predictions(out / "detections.json", predictions, detector.class_names)
    if attributes:
        # one probability per detection, in the order of detections.json
        write_text(out / "attributes.json", json.dumps(attribute_values, indent=1))  # atomic, as detections.json
    fps = done / seconds if seconds else 0.0
    print(f"{done} image(s)/frame(s), {faces} detection(s) at min_score {args.min_score}, input long side "
          f"{args.input_size}, runtime {detector.runtime}: {1000 * seconds / max(done, 1):.1f} ms/image "
          f"({fps:.1f} FPS, decode excluded); annotated output and detections.json in {out}")
    return 0 if done else 2


def _detect_batch(args: argparse.Namespace) -> int:
    """``detect --engine ray`` or ``--format parquet``: image files only, detections only (no drawn copies)."""
    from singleshot.batch import detect_batch
    from singleshot.video import is_video_source

    mode = "--engine ray" if args.engine == "ray" else "--format parquet"
    drawn = [flag for flag, on in (("--source", args.source is not None), ("--attributes", args.attributes),
                                   ("--crops", args.crops), ("--blur", args.blur), ("--show", args.show)) if on]
    videos = [s for s in args.sources if is_video_source(s)]
    if drawn or videos:
        raise UserError(f"{mode} writes detections of image files only: drop {', '.join(drawn) or videos[0]}")
    report = detect_batch(
        args.sources, args.out, engine=args.engine, weights=args.weights, runtime=args.runtime,
        input_size=args.input_size, threads=args.threads, box_vote=not args.no_box_vote,
        large_face_pass=args.large_face_pass, min_score=args.min_score,
        max_overlap=args.max_overlap, top_k=args.top_k, batch_size=args.batch_size, fmt=args.format,
        ray_address=args.ray_address, workers=args.workers, progress=not args.no_progress,
    )
    print(report.line())
    return 0 if report.images else 2


def _wxh(text: str) -> tuple[int, int]:
    """argparse type of ``WxH`` -> ``(H, W)``."""
    match = re.fullmatch(r"(\d+)x(\d+)", text.strip().lower())
    if not match:
        raise argparse.ArgumentTypeError(f"expected WxH, e.g. 640x480, got {text!r}")
    return int(match[2]), int(match[1])


def _wxh_list(text: str) -> list[tuple[int, int]]:
    """argparse type of ``WxH,WxH,...`` -> ``[(W, H), ...]`` (bench frames)."""
    return [tuple(reversed(_wxh(f))) for f in text.split(",")]


def _int_list(text: str) -> list[int]:
    """argparse type of ``1,2`` -> ``[1, 2]``."""
    if not re.fullmatch(r"\d+(,\d+)*", text.strip()):
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")
    return [int(v) for v in text.split(",")]


def _box_vote(text: str) -> float | str:
    """argparse type of ``--box-vote``: ``off`` or an IoU (its range is checked by ``override_vote_iou``)."""
    if text == "off":
        return text
    if not re.fullmatch(r"\d*\.?\d+", text.strip()):
        raise argparse.ArgumentTypeError(f"expected an IoU such as 0.5, or off; got {text!r}")
    return float(text)


def _cmd_export(args: argparse.Namespace) -> int:
    from singleshot.deploy.export import export_model

    if not args.out:
        raise UserError("give the output file: --out FILE.pt (weights only) or --out FILE.onnx")
    frame = args.frame
    if args.input_size_wxh is not None:
        frame = args.input_size_wxh
    report = export_model(args.weights, args.out, frame_hw=frame, dynamic=args.dynamic, opset=args.opset,
                          box_vote=args.box_vote, int8=args.int8, calib=args.calib, calib_images=args.calib_images)
    path = report.path
    if report.fp32_path is None:
        print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB, weights only)")
        return 0
    fp32, check = report.fp32_path, report.check_hw
    hw = report.input_hw
    shape = "dynamic, H and W multiples of 32" if hw is None else f"{hw[1]}x{hw[0]}"
    print(f"wrote {fp32} ({fp32.stat().st_size / 1e6:.2f} MB; input {shape}; opset {args.opset})")
    print(f"check, ONNX Runtime vs PyTorch on a {check[1]}x{check[0]} input: largest box difference "
          f"{report.box_diff_px:.2e} px, largest score difference {report.score_diff:.2e}, detections after NMS "
          f"{'identical' if report.same_detections else 'DIFFERENT'}")
    if args.int8:
        print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB, int8 QDQ, calibrated on {args.calib}); "
              f"measure its accuracy with: singleshot eval --weights {path} --data FORMAT:PATH")
    return 0 if report.ok else 1


def _protocol_params(fn) -> list[str]:
    import inspect

    return list(inspect.signature(fn).parameters)


def _add_inference_options(parser: argparse.ArgumentParser, min_score: float, prefix: str = "") -> None:
    """The options of running a detector, shared by ``detect`` and ``eval --weights``."""
    parser.add_argument("--min-score", type=float, default=min_score, help=f"{prefix}lowest score kept ({min_score})")
    parser.add_argument("--max-overlap", type=float, default=0.45, help=f"{prefix}NMS IoU threshold (0.45)")
    parser.add_argument("--top-k", type=int, default=200, help=f"{prefix}most detections per image (200)")
    parser.add_argument("--input-size", type=int, default=640,
                        help=f"{prefix}long side of inference, aspect kept (640)")
    parser.add_argument("--threads", type=int, default=None, help=f"{prefix}threads of the runtime")
    parser.add_argument("--runtime", choices=("torch", "ort", "opencv"), default=None,
                        help=f"{prefix}PyTorch, ONNX Runtime or OpenCV DNN (default: torch for .pt, ort for .onnx)")
    parser.add_argument("--no-box-vote", action="store_true",
                        help=f"{prefix}plain NMS, without the box voting the model recommends (docs/deployment.md)")
    _large_face_pass_flag(parser, prefix)
    _max_pixels_flag(parser)


def _large_face_pass_flag(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    parser.add_argument("--no-large-face-pass", dest="large_face_pass", action="store_const", const=False,
                        default="auto", help=f"{prefix}one pass per photo: no second pass at half the input size for the large faces "
                             "of a small photo (docs/deployment.md)")


def _max_pixels_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--max-pixels", type=_positive_int, default=None, metavar="N",
                        help="images declaring more pixels are refused from their header (JPEGs decoded reduced "
                             "where the verb allows it); default SINGLESHOT_MAX_PIXELS, else 150000000")


def _positive_int(text: str) -> int:
    """argparse type of a whole number >= 1 (``150000000``, ``150_000_000`` or ``1.5e8``)."""
    try:
        value = int(float(text))
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return value


def _cmd_kindle(args: argparse.Namespace) -> int:
    from singleshot.kindle import create_teacher, kindle

    teacher = create_teacher(args.teacher, threads=args.threads, input_size=args.input_size,
                             large_face_pass=args.large_face_pass)
    report = kindle(
        teacher, args.images, args.out, min_score=args.min_score, ignore_score=args.ignore_score,
        fmt=args.format, force=args.force, progress=not args.no_progress,
    )
    print(report.table())
    print(f"report: {Path(args.out) / 'kindle_report.json'}")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from singleshot.bench import RUNTIME_ROWS, run_bench
    from singleshot.peers import PEER_NAMES

    frames, threads = args.frames, args.thread_counts
    runtimes = [r.strip() for r in args.runtimes.split(",") if r.strip()]
    bad = [r for r in runtimes if r not in RUNTIME_ROWS]
    if bad:
        raise UserError(f"--runtimes: unknown {bad} (choose from {', '.join(RUNTIME_ROWS)})")
    peers = list(PEER_NAMES) if args.peers == "all" else [p for p in (args.peers or "").split(",") if p]
    options = {}
    if args.data_option:
        if not args.data:
            raise UserError("--data-option needs --data")
        options = _data_options(args.data, args.data_option)
    report = run_bench(
        args.weights, runtimes, frames, threads, args.runs, args.min_score, args.image, peers, args.data,
        args.min_size, args.calib, args.work_dir, progress=not args.no_progress,
        log=lambda line: print(line, file=sys.stderr), data_options=options,
    )
    if args.json:
        print(report.to_json())
    else:
        print(report.markdown())
    if args.out:
        from singleshot.atomic import write_text

        write_text(args.out, report.to_json())
        print(f"\nJSON: {args.out}", file=sys.stderr)
    return 0


def _cmd_points_train(args: argparse.Namespace) -> int:
    from singleshot.config import load_dataclass
    from singleshot.points import PointConfig, train_points

    config = load_dataclass(PointConfig, args.config, args.set)
    if args.out:
        config.out = args.out
    result = train_points(config, progress=not args.no_progress, resume=args.resume)
    if args.json:
        print(json.dumps(asdict(result), indent=1))
    else:
        print(f"{result.train_faces} training faces ({', '.join(f'{k}: {v}' for k, v in result.faces_per_set.items())}),"
              f" {result.val_faces} held out: NME {result.val_nme:.4f}, failure rate {result.val_failure_rate:.3f}, "
              f"eye distance x{result.val_eye_scale:.3f}, eye error / face size {result.val_eye_error:.4f}; "
              f"weights {result.checkpoint}")
    return 0


def _cmd_points_export(args: argparse.Namespace) -> int:
    from singleshot.points import PointRefiner

    refiner = PointRefiner(args.weights)
    path = refiner.export_onnx(args.out)
    print(f"{path}: crops (K, 3, {refiner.input_size}, {refiner.input_size}) normalised RGB (mean {refiner.mean_rgb}, "
          f"std {refiner.std_rgb}) -> points (K, 10) in crop pixels / {refiner.input_size}; the crop: a square of "
          f"{refiner.crop_scale:g} box long sides around the box's centre")
    return 0


def _cmd_attribute_train(args: argparse.Namespace) -> int:
    from singleshot.attributes import AttributeConfig, train_attribute
    from singleshot.config import load_dataclass

    config = load_dataclass(AttributeConfig, args.config, args.set)
    if args.out:
        config.out = args.out
    result = train_attribute(config, progress=not args.no_progress)
    if args.json:
        print(json.dumps(asdict(result), indent=1))
    return 0


def _cmd_attribute_crops(args: argparse.Namespace) -> int:
    from singleshot.attributes import cut_face_crops

    options = _data_options(args.data, args.data_option)
    report = cut_face_crops(args.data, args.out, size=args.size, crop_scale=args.crop_scale,
                            min_size=args.min_size, force=args.force, progress=not args.no_progress,
                            data_options=options, align=args.align, label=args.label)
    print(f"{report.crops} crops of {report.images} images written to {report.out}; skipped: {report.skipped_small} "
          f"faces under {args.min_size:g} px, {report.skipped_ignore} ignore regions, "
          f"{len(report.unreadable)} unreadable images")
    return 0


def _cmd_attribute_align(args: argparse.Namespace) -> int:
    from singleshot.attributes.data import align_crop_folder
    from singleshot.kindle import create_teacher, teacher_gives_points

    teacher = create_teacher(args.teacher, threads=args.threads,
                             large_face_pass=args.large_face_pass)
    if not teacher_gives_points(teacher):
        raise UserError(f"teacher {args.teacher!r} gives no five face points (retinaface does, and a "
                              "checkpoint with a landmark head)")
    report = align_crop_folder(args.crops, args.out, teacher, size=args.size, scale=args.scale, force=args.force,
                               progress=not args.no_progress, zoom=args.zoom, grayscale=args.grayscale,
                               seed=args.seed)
    print(f"{report.aligned} of {report.crops} crops aligned by {teacher.name}'s points, written to {report.out}; "
          f"{len(report.unaligned)} without a face with points kept as they were (resized); "
          f"{len(report.unreadable)} unreadable")
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from singleshot.serve.app import run_server

    run_server(args.weights, host=args.host, port=args.port, workers=args.workers, threads=args.threads,
               max_queue=args.max_queue, input_size=args.input_size)
    return 0


def _deprecated(parser: argparse.ArgumentParser, old: str, dest: str, new: str, **kwargs) -> None:
    """Accept the flag ``old`` (spelling of the previous release) into ``dest``, with a note to use ``new``."""

    class Deprecated(argparse.Action):
        def __call__(self, parser, namespace, values, option_string=None):
            print(f"note: {old} is deprecated and will be removed; use {new}", file=sys.stderr)
            setattr(namespace, self.dest, values)

    parser.add_argument(old, dest=dest, action=Deprecated, help=argparse.SUPPRESS, **kwargs)


def _zoom_range(text: str) -> tuple[float, float]:
    """``Z`` or ``LOW:HIGH`` -> ``(low, high)``, both > 0 and low <= high (else a one-line usage error)."""
    problem = argparse.ArgumentTypeError(f"a zoom Z or a range LOW:HIGH with 0 < LOW <= HIGH, got {text!r}")
    parts = text.split(":")
    try:
        low, high = float(parts[0]), float(parts[-1])
    except ValueError:
        raise problem from None
    if len(parts) > 2 or not 0 < low <= high:
        raise problem
    return low, high


def _points_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--points", default="auto", metavar="auto|off|NAME|CKPT",
                        help="five points on each face from a point network: auto (the bundled one, for a face "
                             "detector without a landmark head of its own), off, or a point checkpoint (default auto)")


def _json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def _no_progress_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def _data_option_flag(parser: argparse.ArgumentParser, help_text: str) -> None:
    parser.add_argument("--data-option", action="append", default=[], metavar="KEY=VALUE", help=help_text)


def _verb(sub, name: str, help_text: str, func) -> argparse.ArgumentParser:
    """The parser of verb ``name``, which runs ``func(args)``."""
    parser = sub.add_parser(name, help=help_text)
    parser.set_defaults(func=func)
    return parser


def _verb_group(sub, name: str, help_text: str):
    """A verb with verbs of its own (``singleshot data stats``): returns its sub-parsers."""
    group = sub.add_parser(name, help=help_text)
    return group.add_subparsers(dest=f"{name}_verb", required=True, metavar=f"{name.upper()}_VERB",
                                parser_class=_Parser)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every verb."""
    parser = _Parser(prog="singleshot", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB", parser_class=_Parser)

    models = _verb(sub, "models", "list registered models with input size, priors, parameters and GFLOPs", _cmd_models)
    models.add_argument("names", nargs="*", help="models to describe (default: all)")
    _json_flag(models)

    data_sub = _verb_group(sub, "data", "inspect datasets")
    stats = _verb(data_sub, "stats", "image and box counts, and the histogram of box sizes", _cmd_data_stats)
    stats.add_argument("data", metavar="FORMAT:PATH", help="dataset, e.g. csv:../shared/data/faces/face_counting/val")
    _data_option_flag(stats, "option of the format's reader, e.g. single_class=face, split=val (repeatable)")
    stats.add_argument("--long-side", type=int, default=640,
                       help="also give box sizes after resizing each image to this long side (0: off)")
    stats.add_argument("--check-images", action="store_true", help="decode every image, count unreadable ones")
    _json_flag(stats)

    points = _verb(data_sub, "points", "give a dataset's boxes the landmarks of a teacher's kindled set "
                   "(IoU match): a csv dataset with both", _cmd_data_points)
    points.add_argument("--boxes", required=True, metavar="FORMAT:PATH", help="the dataset whose boxes are kept")
    _data_option_flag(points, "option of the --boxes format's reader (repeatable)")
    points.add_argument("--points", required=True, metavar="FORMAT:PATH",
                        help="a set with landmarks, e.g. csv:runs/kindled/NAME from singleshot kindle --teacher "
                             "retinaface")
    points.add_argument("--min-iou", type=float, default=0.5, help="overlap a teacher box needs to give its points")
    points.add_argument("--out", required=True, metavar="DIR", help="folder of the merged csv dataset")

    combine = _verb(data_sub, "combine", "a teacher's kindled boxes with human points on the same photos (e.g. "
                    "Caltech WebFaces): a csv dataset with both", _cmd_data_combine)
    combine.add_argument("--teacher", required=True, metavar="FORMAT:PATH",
                         help="the kindled set, e.g. csv:runs/kindled/NAME from singleshot kindle --teacher retinaface")
    combine.add_argument("--human", required=True, metavar="FORMAT:PATH",
                         help="the human-labelled points, e.g. caltech:.data/caltech; only its photos are kept")
    _data_option_flag(combine, "option of the --human format's reader, e.g. split=train (repeatable)")
    combine.add_argument("--missed", choices=("box", "ignore"), default="box",
                         help="a face the teacher missed: a box from its points (fitted to the teacher's boxes) or "
                              "an ignore region")
    combine.add_argument("--out", required=True, metavar="DIR", help="folder of the combined csv dataset")

    ev = _verb(sub, "eval", "score predictions against ground truth with a standard protocol", _cmd_eval)
    ev.add_argument("--data", required=True, metavar="FORMAT:PATH", help="ground truth")
    _data_option_flag(ev, "option of the format's reader (repeatable)")
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
    _json_flag(ev)
    ev.add_argument("--plot", metavar="PNG", help="write the precision-recall (or ROC) curves to this file")

    detect = _verb(sub, "detect", "find faces (or a checkpoint's classes) in images and folders", _cmd_detect)
    detect.add_argument("sources", nargs="*", metavar="SOURCE",
                        help="image files, folders (searched recursively) and video files")
    detect.add_argument("--source", metavar="CAMERA|VIDEO", help="a camera index (e.g. 0) or a video file")
    detect.add_argument("--weights", help="checkpoint or .onnx file (default: the face model bundled with the package)")
    _add_inference_options(detect, min_score=0.5)
    detect.add_argument("--out", default="detections", help="folder for annotated images, videos and detections.json")
    detect.add_argument("--batch-size", type=int, default=8, help="images per network call (8)")
    detect.add_argument("--attributes", metavar="NAME[,NAME]",
                        help="also score attributes of each detection (e.g. smile, or an attribute checkpoint); "
                             "drawn on the images and written to attributes.json")
    _points_flag(detect)
    detect.add_argument("--show", action="store_true", help="videos and cameras: show the frames instead of writing")
    detect.add_argument("--crops", metavar="DIR",
                        help="also write each face aligned by its five landmarks (112x112, the face-recognition "
                             "template) to DIR as NAME_N.jpg")
    detect.add_argument("--blur", nargs="?", const="blur", choices=("blur", "pixelate"),
                        help="write anonymised copies (faces blurred, or pixelated) instead of annotated ones")
    detect.add_argument("--max-frames", type=int, default=None, help="videos and cameras: stop after this many frames")
    detect.add_argument("--engine", choices=("local", "ray"), default="local",
                        help="local: this process; ray: a pool of Ray actors, one CPU and one runtime thread each "
                             "(needs pip install 'singleshot[ray]'; detections only, no drawn copies)")
    detect.add_argument("--ray-address", metavar="ADDR",
                        help="with --engine ray: join this Ray cluster (e.g. HEAD_IP:6379 from ray start --head, or "
                             "auto); default: start a local Ray instance")
    detect.add_argument("--workers", type=int, default=None,
                        help="with --engine ray: actors, one model each (default: every CPU of the instance)")
    detect.add_argument("--format", choices=("json", "parquet"), default="json",
                        help="json: detections.json; parquet: shards detections-NNNNN.parquet of 100000 images, "
                             "written as results arrive (very large runs; detections only, no drawn copies)")
    _no_progress_flag(detect)

    export = _verb(sub, "export", "write a deployable copy of a checkpoint (.pt weights, or .onnx)", _cmd_export)
    export.add_argument("--weights", required=True, metavar="CKPT", help="training or weights checkpoint")
    export.add_argument("--out", "-o", metavar="FILE",
                        help="output file: .pt (weights only) or .onnx (decoding inside, NMS outside)")
    _deprecated(export, "--output", "out", "--out")
    export.add_argument("--frame", type=_wxh, default=(480, 640), metavar="WxH",
                        help="input size of a fixed ONNX graph (640x480)")
    _deprecated(export, "--input-size", "input_size_wxh", "--frame", type=_wxh)
    export.add_argument("--dynamic", action="store_true", help="ONNX with free batch, height and width")
    export.add_argument("--opset", type=int, default=17, help="ONNX opset (17)")
    export.add_argument("--box-vote", metavar="IOU|off", default=None, type=_box_vote,
                        help="box voting the exported model recommends after NMS: an IoU, or off (default: the "
                             "checkpoint's postprocess.vote_iou)")
    export.add_argument("--int8", action="store_true", help="static int8 quantisation (QDQ) with --calib")
    export.add_argument("--calib", metavar="DIR", help="folder of photos for int8 calibration")
    export.add_argument("--calib-images", type=int, default=64, help="calibration photos used (64)")

    kin = _verb(sub, "kindle", "label a folder of unlabelled photos with a teacher detector (a dataset)", _cmd_kindle)
    kin.add_argument("--teacher", required=True,
                     help="retinaface, mtcnn, blazeface, haar (installed peers), 'bundled', or a checkpoint path")
    kin.add_argument("--images", required=True, metavar="DIR", help="folder of photos (searched recursively)")
    kin.add_argument("--out", required=True, metavar="DIR", help="dataset folder to write")
    kin.add_argument("--min-score", type=float, default=0.6, help="teacher score from which a box is a face (0.6)")
    kin.add_argument("--ignore-score", type=float, default=0.3,
                     help="teacher score from which a box under --min-score is an ignore region (0.3)")
    kin.add_argument("--format", choices=("csv", "coco"), default="csv", help="dataset format (csv)")
    kin.add_argument("--input-size", type=int, default=None,
                     help="long side the teacher runs at (default: checkpoints 640, peers the image as is)")
    kin.add_argument("--threads", type=int, default=2, help="teacher threads (2)")
    _large_face_pass_flag(kin, "a checkpoint teacher: ")
    kin.add_argument("--force", action="store_true", help="replace a finished dataset in --out")
    _max_pixels_flag(kin)
    _no_progress_flag(kin)

    bench = _verb(sub, "bench", "end-to-end latency per runtime, frame size and threads (and peers, AP)", _cmd_bench)
    bench.add_argument("--weights", help="checkpoint (default: the bundled face model)")
    bench.add_argument("--runtimes", default="torch,ort,ort-int8,opencv",
                       help="rows of ours: torch, ort, ort-int8, opencv (comma-separated; all by default)")
    bench.add_argument("--frames", type=_wxh_list, default=[(320, 240), (640, 480)], metavar="WxH,...",
                       help="frame sizes (320x240,640x480)")
    bench.add_argument("--thread-counts", type=_int_list, default=[1, 2], metavar="N,...",
                       help="threads of the runtime, one row each (1,2)")
    _deprecated(bench, "--threads", "thread_counts", "--thread-counts", type=_int_list)
    bench.add_argument("--runs", type=int, default=50, help="timed calls per row, after 5 warm-up calls (50)")
    bench.add_argument("--min-score", type=float, default=0.5, help="score threshold of the timed calls (0.5)")
    bench.add_argument("--image", help="photo the frames are cut from (default: the first of --data, or the demo)")
    bench.add_argument("--peers", nargs="?", const="all", default=None,
                       help="also the installed peer detectors: all, or a comma-separated list")
    bench.add_argument("--data", metavar="FORMAT:PATH", help="labelled set for AP@0.5 of every row")
    _data_option_flag(bench, "option of the --data format's reader, e.g. split=val (repeatable)")
    bench.add_argument("--min-size", type=float, default=16, help="with --data: faces under this many px ignored (16)")
    bench.add_argument("--calib", metavar="DIR", help="int8 calibration photos (default: the --data images)")
    bench.add_argument("--work-dir", metavar="DIR", help="keep the exported ONNX files here")
    _json_flag(bench)
    bench.add_argument("--out", metavar="FILE", help="also write the table as JSON to this file")
    _no_progress_flag(bench)

    serve = _verb(sub, "serve", "face detection over HTTP (POST /detect) and a browser demo page", _cmd_serve)
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1: this machine only)")
    serve.add_argument("--port", type=int, default=8000, help="port (8000)")
    serve.add_argument("--weights", help="checkpoint or dynamic .onnx file (default: the bundled face model)")
    serve.add_argument("--workers", type=int, default=1, help="inference threads, one ONNX Runtime session each (1)")
    serve.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads per worker (its default)")
    serve.add_argument("--input-size", type=int, default=640, help="long side of the inference resolution (640)")
    serve.add_argument("--max-queue", type=int, default=32,
                       help="requests waiting or running at once; more are answered 503 (32)")

    points_sub = _verb_group(sub, "points", "five face points from a second-stage network on each detected face")
    points_train = _verb(points_sub, "train", "train a point network from a YAML config, report its held-out error",
                         _cmd_points_train)
    points_train.add_argument("config", nargs="?", help="YAML config (e.g. configs/points/face_points.yaml)")
    points_train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                              help="override a config value, e.g. --set epochs=4 (repeatable, validated)")
    points_train.add_argument("--out", help="folder for last.pt and face_points.pt (same as --set out=...)")
    points_train.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    _json_flag(points_train)
    _no_progress_flag(points_train)
    points_export = _verb(points_sub, "export", "write a point network as ONNX (for runtimes outside Python)",
                          _cmd_points_export)
    points_export.add_argument("--weights", default="face", help="a point checkpoint or a registered name (face)")
    points_export.add_argument("--out", required=True, help="ONNX file to write")

    attr_sub = _verb_group(sub, "attribute", "face attributes (e.g. smile) by transfer learning")
    attr_train = _verb(attr_sub, "train", "train an attribute head from a YAML config, report test accuracy",
                       _cmd_attribute_train)
    attr_train.add_argument("config", nargs="?", help="YAML config (e.g. configs/attributes/smile.yaml)")
    attr_train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                            help="override a config value, e.g. --set backbone_init=random (repeatable, validated)")
    attr_train.add_argument("--out", help="checkpoint to write (same as --set out=...)")
    _json_flag(attr_train)
    _no_progress_flag(attr_train)
    attr_crops = _verb(attr_sub, "crops", "cut the faces of a detection dataset into square crops (unlabelled crops "
                       "for distillation, or to label by hand)", _cmd_attribute_crops)
    attr_crops.add_argument("--data", required=True, metavar="FORMAT:PATH", help="dataset, e.g. csv:DIR")
    _data_option_flag(attr_crops, "option of the format's reader, e.g. split=train (repeatable)")
    attr_crops.add_argument("--out", required=True, help="folder for the crops")
    attr_crops.add_argument("--size", type=int, default=64, help="crop side in pixels (default 64)")
    attr_crops.add_argument("--crop-scale", type=float, default=1.0,
                            help="crop side in box long sides, as the attribute's crop_scale (default 1.0)")
    attr_crops.add_argument("--min-size", type=float, default=40.0,
                            help="skip faces whose long side is under this many pixels (default 40)")
    attr_crops.add_argument("--force", action="store_true", help="write into a folder that already holds crops")
    attr_crops.add_argument("--align", default=None, metavar="NAME|CKPT",
                            help="align each crop by a point network's five points on its box (face: the bundled "
                                 "one), for an attribute trained with align: true; --crop-scale is then the "
                                 "template scale")
    attr_crops.add_argument("--label", default=None, metavar="COLUMN",
                            help="sort the crops into 0/ and 1/ by this per-face label of the dataset (e.g. smile "
                                 "in MTFL's original release), a labelled set for attribute training")
    _no_progress_flag(attr_crops)

    attr_align = _verb(attr_sub, "align", "align a folder of face crops by the five points a landmark detector "
                       "finds on them (subfolders kept), for an attribute trained with align: true",
                       _cmd_attribute_align)
    attr_align.add_argument("--crops", required=True, metavar="DIR", help="folder of face crops, e.g. with "
                            "train/0, train/1, test/0, test/1")
    attr_align.add_argument("--out", required=True, metavar="DIR", help="folder for the aligned crops")
    attr_align.add_argument("--teacher", default="bundled",
                            help="detector with five points: retinaface, 'bundled' or a checkpoint (default bundled)")
    attr_align.add_argument("--size", type=int, default=64, help="aligned crop side in pixels (default 64)")
    attr_align.add_argument("--scale", type=float, default=1.0,
                            help="how much around the face, in face-recognition template crops (default 1.0)")
    attr_align.add_argument("--zoom", type=_zoom_range, default=None, metavar="Z|LOW:HIGH",
                            help="another view of the faces (for train_views): each crop zoomed first (> 1: cut "
                                 "closer), by Z or by a zoom drawn from LOW..HIGH, and aligned as the photo shows it")
    attr_align.add_argument("--grayscale", action="store_true",
                            help="another view of the faces (for train_views): each crop turned grey first")
    attr_align.add_argument("--seed", type=int, default=0, help="seed of the zoom draws (default 0)")
    attr_align.add_argument("--threads", type=int, default=2, help="teacher threads (2)")
    _large_face_pass_flag(attr_align, "a checkpoint teacher: ")
    attr_align.add_argument("--force", action="store_true", help="replace crops already in --out")
    _no_progress_flag(attr_align)

    train = _verb(sub, "train", "train a model from a YAML config", _cmd_train)
    train.add_argument("config", nargs="?", help="YAML config (e.g. configs/face_slim.yaml); defaults if omitted")
    train.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                       help="override a config value, e.g. --set train.lr=0.01 (repeatable, validated)")
    train.add_argument("--resume", metavar="CKPT", help="continue exactly from a training checkpoint (last.pt); "
                       "without CONFIG, with the run's own config")
    train.add_argument("--out", metavar="DIR", help="run folder (same as --set train.out_dir=...)")
    _max_pixels_flag(train)
    _deprecated(train, "--out-dir", "out", "--out")
    _no_progress_flag(train)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``singleshot`` console script: exit 0 on success, 2 on an error the user can fix (one
    line on stderr, no traceback), 130 on Ctrl-C."""
    argv = list(sys.argv[1:] if argv is None else argv)
    verb = next((a for a in argv if not a.startswith("-")), "")
    try:
        args = build_parser().parse_args(argv)
        if getattr(args, "max_pixels", None):
            from singleshot.images import MAX_PIXELS_VARIABLE

            # through the environment, so DataLoader workers and every reader see the same limit
            os.environ[MAX_PIXELS_VARIABLE] = str(args.max_pixels)
        return args.func(args)
    except SingleshotError as err:  # every error a user can fix: one line, no traceback
        print(f"singleshot {verb}: error: {err}".replace(f"singleshot {verb}: error: singleshot", "singleshot"),
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"singleshot {verb}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
