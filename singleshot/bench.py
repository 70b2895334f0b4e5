"""``singleshot bench``: end-to-end latency per runtime, input size and thread count, beside the peer detectors.

Latency is measured the way the face-detector author asked for ("on the target device, not by counting FLOPs"):
a photo already decoded in memory and sized to the frame (320x240, 640x480...), then pre-processing, network,
decoding and NMS, p50 and p90 over ``runs`` calls after warm-up, with the median of each stage. The network runs
at the frame size (input long side = frame width). Peers (:mod:`singleshot.peers`) run on the same frames with the
same thread count, those importable in this environment only. With labelled data, AP@0.5 (VOC, all-point) of every
row is measured on it at score 0.02, input long side 640, faces under ``min_size`` px ignored.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from singleshot.errors import SingleshotError

#: Our runtimes as bench rows: (row name, Detector runtime, int8).
RUNTIME_ROWS = {"torch": ("torch", False), "ort": ("ort", False), "ort-int8": ("ort", True), "opencv": ("opencv", False)}


@dataclass
class BenchRow:
    """One line of the table: a detector on a runtime at one frame size and thread count."""

    detector: str
    runtime: str
    frame: str
    threads: int
    p50_ms: float
    p90_ms: float
    pre_ms: float | None = None
    net_ms: float | None = None
    post_ms: float | None = None
    ap50: float | None = None
    points_ms: float | None = None  # the point network's five points per face (in p50, not in pre + net + post)

    @property
    def post_share(self) -> float | None:
        if self.post_ms is None or self.pre_ms is None or self.net_ms is None:
            return None
        total = self.pre_ms + self.net_ms + self.post_ms
        return self.post_ms / total if total else None


@dataclass
class BenchReport:
    rows: list[BenchRow] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        head = "| detector | runtime | frame | threads | p50 ms | p90 ms | pre | net | post (share) | points | AP@0.5 |"
        lines = [head, "|" + "---|" * 11]
        for r in self.rows:
            share = r.post_share
            post = "-" if r.post_ms is None else f"{r.post_ms:.2f} ({100 * share:.0f}%)"
            lines.append(
                f"| {r.detector} | {r.runtime} | {r.frame} | {r.threads} | {r.p50_ms:.2f} | {r.p90_ms:.2f} | "
                f"{'-' if r.pre_ms is None else f'{r.pre_ms:.2f}'} | {'-' if r.net_ms is None else f'{r.net_ms:.2f}'} | "
                f"{post} | {'-' if not r.points_ms else f'{r.points_ms:.2f}'} | "
                f"{'-' if r.ap50 is None else f'{r.ap50:.4f}'} |"
            )
        notes = [f"{k}: {v}" for k, v in self.settings.items()]
        if self.skipped:
            notes.append("skipped: " + "; ".join(self.skipped))
        return "\n".join(lines) + "\n\n" + "\n".join(f"- {n}" for n in notes)

    def to_json(self) -> str:
        return json.dumps({"rows": [asdict(r) for r in self.rows], "settings": self.settings,
                           "skipped": self.skipped}, indent=1)


def frame_from(image_rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """``image_rgb`` as a ``height x width`` frame (resized to cover, centre-cropped: no padding, no stretching)."""
    h, w = image_rgb.shape[:2]
    scale = max(width / w, height / h)
    resized = cv2.resize(image_rgb, (max(width, round(w * scale)), max(height, round(h * scale))),
                         interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    top = (resized.shape[0] - height) // 2
    left = (resized.shape[1] - width) // 2
    return np.ascontiguousarray(resized[top : top + height, left : left + width])


def time_calls(fn: Callable[[], Any], runs: int, warmup: int = 5, timing: Callable[[], Any] | None = None
               ) -> tuple[float, float, list[float] | None]:
    """p50 and p90 in ms of ``fn()`` over ``runs`` calls after ``warmup``; with ``timing``, the stage medians."""
    for _ in range(warmup):
        fn()
    times, parts = [], []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
        if timing is not None:
            t = timing()
            parts.append((t.preprocess_ms, t.network_ms, t.postprocess_ms, getattr(t, "points_ms", 0.0)))
    stages = [float(np.median([p[i] for p in parts])) for i in range(4)] if parts else None
    return float(np.percentile(times, 50)), float(np.percentile(times, 90)), stages


def _set_torch_threads(n: int) -> None:
    import torch

    torch.set_num_threads(n)
    cv2.setNumThreads(n)


def average_precision(detect: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]], data: Any,
                      min_size: float, progress: bool, name: str) -> float:
    """AP@0.5 (VOC all-point, faces under ``min_size`` px ignored) of ``detect(image) -> (boxes, scores)``."""
    import torch

    from singleshot.evaluation import evaluate
    from singleshot.inference import predict_dataset
    from singleshot.structures import Detections

    def as_detections(images: list[np.ndarray]) -> list[Detections]:
        out = []
        for image in images:
            boxes, scores = detect(image)
            scores = torch.as_tensor(np.asarray(scores, np.float32))
            out.append(Detections(torch.as_tensor(np.asarray(boxes, np.float32)).reshape(-1, 4), scores,
                                  torch.ones(len(scores), dtype=torch.long)))
        return out

    predictions, _ = predict_dataset(as_detections, data, batch_size=1, progress=progress, desc=f"AP {name}")
    return float(evaluate(data, predictions, protocol="voc", min_size=min_size).metrics["mAP"])


def run_bench(
    weights: str | Path | None = None,
    runtimes: Sequence[str] = ("torch", "ort", "ort-int8", "opencv"),
    frames: Sequence[tuple[int, int]] = ((320, 240), (640, 480)),
    threads: Sequence[int] = (1, 2),
    runs: int = 50,
    min_score: float = 0.5,
    image: str | Path | None = None,
    peers: Sequence[str] = (),
    data: str | None = None,
    min_size: float = 16,
    calib: str | Path | None = None,
    work_dir: str | Path | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
    data_options: dict | None = None,
) -> BenchReport:
    """Measure every (runtime or peer) x frame x threads combination; see the module docstring.

    Args:
        weights: checkpoint (None: the bundled face model), or an exported ``.onnx`` file: then the ``ort`` and
            ``opencv`` rows run that file as it is, and the rows that need a checkpoint (``torch``, ``ort-int8``)
            are listed as skipped.
        runtimes: rows of ours among :data:`RUNTIME_ROWS`.
        frames: ``(width, height)`` of the frames.
        threads: thread counts.
        runs: timed calls per row (after 5 warm-up calls).
        min_score: score threshold of the timed calls (a deployment setting; AP always uses 0.02).
        image: the photo the frames are cut from (default: a photo of ``data``, else ``assets/demo.jpg``).
        peers: peer names (:data:`singleshot.peers.PEER_NAMES`); those not installed are skipped and listed.
        data: ``FORMAT:PATH`` labelled set for AP (None: no AP); ``data_options`` go to its reader.
        calib: calibration photos for int8 (default: the images of ``data``, else the folder of ``image``).
        work_dir: where the exported ONNX files go (default: a temporary folder).
    """
    import tempfile

    from singleshot.checkpoint import bundled_weights
    from singleshot.images import decode_image
    from singleshot.predictor import Detector

    report = BenchReport()
    unknown = [r for r in runtimes if r not in RUNTIME_ROWS]
    if unknown:
        raise SingleshotError(f"unknown runtime(s) {unknown} (choose from {', '.join(RUNTIME_ROWS)})")
    dataset = None
    if data:
        from singleshot.data.formats import load_annotations

        dataset = load_annotations(data, **(data_options or {}))
    if image is None:
        image = dataset.samples[0].image_path if dataset is not None else Path("assets/demo.jpg")
    decoded = decode_image(Path(image))
    if decoded is None:
        raise SingleshotError(f"{image}: cannot read the benchmark photo")
    photo = decoded[0]
    weights_path = Path(weights) if weights else bundled_weights()
    work = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="singleshot-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    report.settings = {
        "weights": str(weights_path),
        "latency": f"p50/p90 of {runs} calls after 5 warm-up, frame already decoded in memory, min_score "
                   f"{min_score}, network input = frame size; stage medians pre/net/post in ms; points: the point network's "
                   f"five points on each face (ours, where the model takes one; inside p50, as the peers' points)",
        "AP": f"VOC all-point AP@0.5 on {data}, score 0.02, input long side 640, faces < {min_size} px ignored"
              if data else "no --data given",
        "photo": str(image),
        "machine": f"{platform.processor() or platform.machine()}, {__import__('os').cpu_count()} logical CPUs",
    }

    onnx_files: dict[tuple[str, bool], Path] = {}
    given_onnx = weights_path.suffix.lower() == ".onnx"
    if given_onnx:
        if not weights_path.is_file():
            raise SingleshotError(f"{weights_path}: ONNX file not found")
        for row in [r for r in runtimes if r in ("torch", "ort-int8")]:
            report.skipped.append(f"{row}: needs a checkpoint, not an exported ONNX file")
        runtimes = [r for r in runtimes if r not in ("torch", "ort-int8")]

    def onnx_for(runtime: str, int8: bool, frame: tuple[int, int]) -> Path:
        """The exported file of a runtime: a fixed-size graph per frame size (as one deploys at a known camera
        resolution; the dynamic graph computes its priors on every call and measured about 0.9 ms slower at
        640x480)."""
        from singleshot.checkpoint import build_model_from_checkpoint, checkpoint_vote_iou, load_checkpoint
        from singleshot.deploy.onnx_export import export_onnx

        if given_onnx:
            return weights_path
        key = (frame, int8)
        if key in onnx_files:
            return onnx_files[key]
        checkpoint = load_checkpoint(weights_path)
        model = build_model_from_checkpoint(checkpoint, str(weights_path)).eval()
        mean, std = tuple(checkpoint["mean_rgb"]), tuple(checkpoint["std_rgb"])
        hw = (frame[1] + (-frame[1] % 32), frame[0] + (-frame[0] % 32))  # the graph's size (padded to 32)
        stem = f"fixed_{frame[0]}x{frame[1]}"
        path = export_onnx(model, work / f"{stem}.onnx", list(checkpoint["class_names"]), mean, std,
                           input_size=hw, dynamic=False, vote_iou=checkpoint_vote_iou(checkpoint))
        if int8:
            from singleshot.deploy.quantize import quantize_int8

            folder = calib or (dataset.samples[0].image_path.parent if dataset is not None else Path(image).parent)
            path = quantize_int8(path, work / f"{stem}_int8.onnx", folder, size_hw=hw, mean_rgb=mean)
        onnx_files[key] = path
        return path

    def ours(row: str, frame: tuple[int, int], n: int, points: str | None = "auto") -> Detector:
        runtime, int8 = RUNTIME_ROWS[row]
        _set_torch_threads(n)
        # one pass on every runtime: a fixed-size graph cannot run the large-face pass, and the rows compare runtimes
        if runtime == "torch":
            return Detector(weights_path, input_size=frame[0], threads=n, points=points, large_face_pass=False)
        return Detector(onnx_for(runtime, int8, frame), input_size=frame[0], threads=n, runtime=runtime,
                        points=points, large_face_pass=False)

    for row in runtimes:
        for n in threads:
            for frame in frames:
                detector = ours(row, frame, n)
                picture = frame_from(photo, *frame)
                p50, p90, stages = time_calls(
                    lambda d=detector, x=picture: d.detect(x, min_score=min_score), runs,
                    timing=lambda d=detector: d.timing,
                )
                report.rows.append(BenchRow("singleshot", row, f"{frame[0]}x{frame[1]}", n, p50, p90, *stages[:3],
                                            points_ms=stages[3]))
                log(f"singleshot {row} {frame[0]}x{frame[1]} {n} thread(s): p50 {p50:.2f} ms")
        if dataset is not None:
            n = max(threads)
            # a 640x640 graph letterboxes every photo to a long side of 640, as the PyTorch row resizes it
            detector = ours(row, (640, 640), n, points=None)  # AP scores boxes: no point network

            def detect(img: np.ndarray, d: Detector = detector) -> tuple[np.ndarray, np.ndarray]:
                det = d.detect(img, min_score=0.02, input_size=640)
                return det.boxes_xyxy.numpy(), det.scores.numpy()

            ap = average_precision(detect, dataset, min_size, progress, row)
            for r in report.rows:
                if r.detector == "singleshot" and r.runtime == row:
                    r.ap50 = ap
            log(f"singleshot {row}: AP@0.5 {ap:.4f}")

    for name in peers:
        from singleshot.peers import PeerUnavailableError, create_peer, detect_resized

        try:
            peer = create_peer(name)
        except (PeerUnavailableError, KeyError) as err:
            report.skipped.append(f"{name}: {err.args[0] if err.args else err}")
            continue
        # timed at the deployment threshold like ours (where the peer has one), scored for AP at 0.02
        ap_threshold = peer.score_threshold
        if ap_threshold is not None:
            peer.score_threshold = min_score
        for n in threads:
            peer.set_threads(n)
            _set_torch_threads(n)
            for frame in frames:
                picture = frame_from(photo, *frame)
                p50, p90, _ = time_calls(lambda p=peer, x=picture: p.detect(x), runs)
                report.rows.append(BenchRow(name, "peer", f"{frame[0]}x{frame[1]}", n, p50, p90))
                log(f"{name} {frame[0]}x{frame[1]} {n} thread(s): p50 {p50:.2f} ms")
        peer.score_threshold = ap_threshold
        if dataset is not None:
            peer.set_threads(max(threads))
            ap = average_precision(lambda img, p=peer: detect_resized(p, img, 640), dataset, min_size, progress, name)
            for r in report.rows:
                if r.detector == name:
                    r.ap50 = ap
            log(f"{name}: AP@0.5 {ap:.4f}")
        peer.close()
    return report
