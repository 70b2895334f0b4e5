"""Batch detection over many image files, in this process (``local``) or in a pool of Ray actors (``ray``).

Both engines cut the list of images into the same groups of ``batch_size`` files, in the same order, and run each
group through :func:`detect_group`, so a group's images share one network call padded to the same size in either
engine and their detections are identical. The ``ray`` engine turns the groups into a Ray Data dataset and maps
them over an actor pool (:class:`RayDetectActor`): one actor per worker, one CPU and one runtime thread each, the
model loaded once per actor from bytes the driver sends (so the weights need not exist on the other machines; the
images must: a path every node reads, e.g. a shared filesystem). Results come back to the driver, which writes
``detections.json`` (:func:`singleshot.evaluation.predictions.write_predictions`, as ``singleshot detect``) or,
for very large runs, Parquet shards of ``shard_images`` images each, written as the results arrive.

Ray is optional (``pip install 'singleshot[ray]'``); only the ``ray`` engine imports it.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from singleshot.errors import SingleshotError

ENGINES = ("local", "ray")
FORMATS = ("json", "parquet")

#: How to get the optional engine; printed when it is asked for but not installed.
RAY_INSTALL = "pip install 'singleshot[ray]' (Ray Data and ONNX Runtime)"


class BatchError(SingleshotError):
    """A batch detection run that cannot start as asked (sources, engine, format); the message says why."""


@dataclass
class BatchReport:
    """What a batch detection run did: images with detections, detections, unreadable images (``(path,
    problem)``), wall-clock seconds (model loading included) and the files written."""

    engine: str
    images: int = 0
    detections: int = 0
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    workers: int = 1
    files: list[Path] = field(default_factory=list)

    @property
    def images_per_s(self) -> float:
        return (self.images + len(self.unreadable)) / self.seconds if self.seconds else 0.0

    def line(self) -> str:
        """One line for the terminal."""
        where = f"{self.workers} Ray worker(s)" if self.engine == "ray" else "this process"
        written = ", ".join(str(f) for f in self.files[:2]) + (f" and {len(self.files) - 2} more"
                                                                 if len(self.files) > 2 else "")
        return (f"{self.images} image(s), {self.detections} detection(s), {len(self.unreadable)} unreadable; "
                f"{self.images_per_s:.1f} images/s on {where}; wrote {written}")


def image_sources(sources: Sequence[str | Path]) -> list[tuple[Path, str]]:
    """``(path, key)`` of every image named: files keep their file name, folders give paths relative to them.

    Raises:
        BatchError: a source does not exist, or a folder holds no image.
    """
    from singleshot.data.formats.folder import IMAGE_SUFFIXES, find_images

    items = []
    for source in sources:
        path = Path(source)
        if path.is_dir():
            images = find_images(path)
            if not images:
                raise BatchError(f"{path}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
            items += [(p, p.relative_to(path).as_posix()) for p in images]
        elif path.is_file():
            items.append((path, path.name))
        else:
            raise BatchError(f"{path}: no such file or folder")
    return items


def rows_to_original(rows: np.ndarray, fx: float, fy: float) -> np.ndarray:
    """Scale ``(K, 6 [+ 2L])`` detection rows from a reduced decode back to the original image's pixels, in place
    (boxes and landmark points; score and label untouched); ``fx, fy`` = original / decoded size."""
    if (fx, fy) != (1.0, 1.0):
        rows[:, :4] *= [fx, fy, fx, fy]
        rows[:, 6:] *= [fx, fy] * ((rows.shape[1] - 6) // 2)
    return rows


def detect_group(detector: Any, paths: Sequence[str | Path], options: dict[str, Any]) -> list[np.ndarray | str]:
    """Decode ``paths`` and run ``detector`` on the readable ones in one call: for each path its ``(K, 6 [+ 2L])``
    rows ``[x1, y1, x2, y2, score, label, (landmarks)]`` in the original image's pixels (an image decoded reduced
    has its rows scaled back), or a string saying why the image cannot be read."""
    from singleshot.data.cache import decode_image, image_problem

    images, readable, factors = [], [], []
    results: list[np.ndarray | str] = [""] * len(paths)
    for i, path in enumerate(paths):
        decoded = decode_image(path)
        if decoded is None:
            results[i] = image_problem(path) or "cannot read the image"
            continue
        image, (height, width) = decoded
        images.append(image)
        readable.append(i)
        factors.append((width / image.shape[1], height / image.shape[0]))
    for i, det, (fx, fy) in zip(readable, detector.detect(images, **options) if images else [], factors):
        results[i] = rows_to_original(det.to_rows(), fx, fy)
    return results


# ----------------------------------------------------------------------------------------------------- writers
class DetectionWriter:
    """Writes detections as they arrive: ``detections.json`` at :meth:`close` (the local engine's file), or Parquet
    shards ``detections-NNNNN.parquet`` of ``shard_images`` images each (columns ``key`` and ``detections``, a
    list of rows ``[x1, y1, x2, y2, score, label, (landmarks)]`` in original pixels; the class names in the schema's
    metadata, ``singleshot_class_names``), so memory stays bounded."""

    def __init__(self, out: Path, fmt: str = "json", shard_images: int = 100_000,
                 class_names: Sequence[str] | None = None) -> None:
        if fmt not in FORMATS:
            raise BatchError(f"unknown format {fmt!r} (formats: {', '.join(FORMATS)})")
        if fmt == "parquet":
            _require("pyarrow", "--format parquet")
        self.out, self.fmt, self.shard_images = Path(out), fmt, shard_images
        self.out.mkdir(parents=True, exist_ok=True)
        self.predictions: dict[str, np.ndarray] = {}
        self.files: list[Path] = []
        self.class_names = list(class_names) if class_names else None

    def add(self, key: str, rows: np.ndarray) -> None:
        self.predictions[key] = rows
        if self.fmt == "parquet" and len(self.predictions) >= self.shard_images:
            self._write_shard()

    def _write_shard(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table({"key": list(self.predictions),
                          "detections": [np.asarray(r, dtype=np.float64).tolist() for r in self.predictions.values()]},
                         schema=pa.schema([("key", pa.string()), ("detections", pa.list_(pa.list_(pa.float64())))],
                                          metadata={"singleshot_class_names": ",".join(self.class_names or [])}))
        path = self.out / f"detections-{len(self.files):05d}.parquet"
        pq.write_table(table, path)
        self.files.append(path)
        self.predictions = {}

    def close(self, order: Sequence[str] | None = None) -> list[Path]:
        """Write what is left; ``order``: the keys in the order of the images given (JSON keeps it)."""
        if self.fmt == "json":
            from singleshot.evaluation.predictions import write_predictions

            if order is not None:
                self.predictions = {k: self.predictions[k] for k in order if k in self.predictions}
            path = self.out / "detections.json"
            write_predictions(path, self.predictions, self.class_names)
            self.files.append(path)
        elif self.predictions or not self.files:
            self._write_shard()
        return self.files


# ----------------------------------------------------------------------------------------------------- engines
def detect_batch(
    sources: Sequence[str | Path],
    out: str | Path = "detections",
    *,
    engine: str = "local",
    weights: str | Path | None = None,
    runtime: str | None = None,
    input_size: int = 640,
    threads: int | None = None,
    box_vote: bool = True,
    min_score: float = 0.5,
    max_overlap: float = 0.45,
    top_k: int = 200,
    large_face_pass: bool | str = "auto",
    batch_size: int = 8,
    fmt: str = "json",
    ray_address: str | None = None,
    workers: int | None = None,
    progress: bool = True,
    shard_images: int = 100_000,
    warn: Callable[[str], None] | None = None,
) -> BatchReport:
    """Detect objects in every image of ``sources`` (files and folders) and write their detections to ``out``.

    Args:
        engine: ``local`` (this process) or ``ray`` (an actor pool on Ray: a local Ray instance, or the cluster at
            ``ray_address``, e.g. ``auto`` or ``HEAD:6379``, as ``ray start --head`` prints).
        runtime: as :class:`~singleshot.predictor.Detector`'s; the ``ray`` engine defaults to ``ort`` (ONNX
            Runtime), a ``.pt`` checkpoint then being exported once per actor.
        large_face_pass: as :class:`~singleshot.predictor.Detector`'s.
        threads: the runtime's threads (the ``ray`` engine: 1 per actor unless given).
        workers: Ray actors (default: every CPU of the local instance or cluster).
        fmt: ``json`` (``detections.json``) or ``parquet`` (shards of ``shard_images`` images).
        warn: called with one line per unreadable image (default: printed on stderr); such an image is skipped.

    Returns:
        The :class:`BatchReport`.
    """
    if engine not in ENGINES:
        raise BatchError(f"unknown engine {engine!r} (engines: {', '.join(ENGINES)})")
    if batch_size < 1:
        raise BatchError(f"batch_size must be >= 1, got {batch_size}")
    if workers is not None and workers < 1:
        raise BatchError(f"workers must be >= 1, got {workers}")
    if engine == "ray":
        _require("ray", "--engine ray")
    items = image_sources(sources)
    if not items:
        raise BatchError("no images given")
    warn = warn or (lambda line: print(line, file=sys.stderr))
    groups = [items[i : i + batch_size] for i in range(0, len(items), batch_size)]
    options = {"min_score": min_score, "max_overlap": max_overlap, "top_k": top_k}
    detector_options = {"input_size": input_size, "box_vote": box_vote, "large_face_pass": large_face_pass}
    report = BatchReport(engine)
    start = time.perf_counter()
    if engine == "local":
        from singleshot.predictor import Detector

        detector = Detector(weights, runtime=runtime, threads=threads, **detector_options)
        writer = DetectionWriter(Path(out), fmt, shard_images, class_names=detector.class_names)
        results = ((path, key, result) for group in groups
                   for (path, key), result in zip(group, detect_group(detector, [p for p, _ in group], options)))
    else:
        from singleshot.predictor import weights_class_names

        # the actors hold the models: the names are read from the weights here, without building one
        writer = DetectionWriter(Path(out), fmt, shard_images, class_names=weights_class_names(weights))
        results = _ray_results(groups, weights, runtime or "ort", 1 if threads is None else threads,
                               detector_options, options, ray_address, workers, report)
    from tqdm import tqdm

    bar = tqdm(total=len(items), desc=f"detecting ({engine})", unit="img", disable=not progress, dynamic_ncols=True)
    try:
        for path, key, rows in results:
            if isinstance(rows, str):
                report.unreadable.append((str(path), rows))
                warn(f"{path}: {rows}; skipped")
            else:
                writer.add(key, rows)
                report.images += 1
                report.detections += len(rows)
            bar.update(1)
    finally:
        bar.close()
        if engine == "ray":
            _ray_shutdown()
    report.seconds = time.perf_counter() - start
    report.files = writer.close(order=[key for _, key in items])
    return report


def _require(module: str, what: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise BatchError(f"{what} needs {module}, which is not installed: {RAY_INSTALL}")


# ------------------------------------------------------------------------------------------------------- Ray
class RayDetectActor:
    """One worker of the Ray engine: a :class:`~singleshot.predictor.Detector` built once from the weights' bytes,
    then called on one group of image paths at a time (a Ray Data batch of one row)."""

    def __init__(self, weights: bytes | list, suffix: str, runtime: str, threads: int, detector_options: dict,
                 options: dict) -> None:
        from singleshot.predictor import Detector

        if isinstance(weights, list):  # [ObjectRef]: the bytes sit once in Ray's object store, not in each call
            import ray

            weights = ray.get(weights[0])

        # The Detector reads a file: the bytes land in this worker's temporary folder, wherever it runs.
        self._folder = tempfile.TemporaryDirectory(prefix="singleshot-")
        path = Path(self._folder.name) / f"model{suffix}"
        path.write_bytes(weights)
        self.detector = Detector(path, runtime=runtime, threads=threads, **detector_options)
        self.options = options

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import pyarrow as pa

        paths, keys, rows, problems = [], [], [], []
        for group_paths, group_keys in zip(batch["paths"], batch["keys"]):
            for path, key, result in zip(group_paths, group_keys,
                                         detect_group(self.detector, list(group_paths), self.options)):
                paths.append(str(path))
                keys.append(str(key))
                problems.append(result if isinstance(result, str) else None)
                rows.append([] if isinstance(result, str) else result.tolist())
        return pa.table({"path": paths, "key": keys, "detections": rows, "problem": problems},
                        schema=pa.schema([("path", pa.string()), ("key", pa.string()),
                                          ("detections", pa.list_(pa.list_(pa.float64()))),
                                          ("problem", pa.string())]))


_STARTED_RAY = False


def _ray_results(groups: list[list[tuple[Path, str]]], weights: str | Path | None, runtime: str, threads: int,
                 detector_options: dict, options: dict, address: str | None, workers: int | None,
                 report: BatchReport) -> Iterator[tuple[str, str, Any]]:
    """``(path, key, rows or problem)`` of every image, from an actor pool on Ray (started here, or joined)."""
    import logging

    import ray

    from singleshot.checkpoint import bundled_weights

    global _STARTED_RAY
    source = Path(weights) if weights is not None else bundled_weights()
    if not source.is_file():
        raise BatchError(f"{source}: weights file not found")
    if not ray.is_initialized():
        _connect_ray(address, workers)
        _STARTED_RAY = True
    cpus = int(ray.cluster_resources().get("CPU", 1))
    report.workers = workers or max(1, cpus)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # ours counts images
    # Ray Data's notes (execution started and finished, bars disabled) at INFO; its warnings stay visible
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)
    context.print_on_execution_start = False
    rows = [{"paths": [str(p) for p, _ in g], "keys": [k for _, k in g]} for g in groups]
    # The weights go to the object store once, every actor (and a restarted one) reads them from there.
    weights_ref = [ray.put(source.read_bytes())]
    dataset = ray.data.from_items(rows, override_num_blocks=min(len(rows), 4 * report.workers)).map_batches(
        RayDetectActor,
        fn_constructor_kwargs={"weights": weights_ref, "suffix": source.suffix.lower(), "runtime": runtime,
                               "threads": threads, "detector_options": detector_options, "options": options},
        batch_size=1,  # one group of images per call, cut as the local engine cuts them
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=report.workers),
        num_cpus=1,
    )
    try:
        for table in dataset.iter_batches(batch_format="pyarrow", batch_size=None):
            for path, key, dets, problem in zip(*(table.column(c).to_pylist()
                                                  for c in ("path", "key", "detections", "problem"))):
                yield path, key, problem if problem is not None else np.asarray(dets, dtype=np.float64).reshape(
                    len(dets), -1 if dets else 6)
    except ray.exceptions.RayError as err:
        raise BatchError(f"Ray engine: {str(err).strip().splitlines()[-1][:300]}") from None


def _connect_ray(address: str | None, workers: int | None, attempts: int = 3) -> None:
    """Join the cluster at ``address``, or start a local instance of ``workers`` CPUs (all of them by default)."""
    import logging
    import os

    import ray

    if address is not None and "RAY_AUTH_MODE" not in os.environ and (
            os.environ.get("RAY_AUTH_TOKEN") or (Path.home() / ".ray" / "auth_token").is_file()):
        # Clusters started by `ray start` use token authentication by default; a client that holds the token
        # (RAY_AUTH_TOKEN, or ~/.ray/auth_token) must say so, or the head refuses it.
        os.environ["RAY_AUTH_MODE"] = "token"
    for attempt in range(1, attempts + 1):
        try:
            ray.init(address=address, num_cpus=workers if address is None else None, include_dashboard=False,
                     logging_level=logging.WARNING, log_to_driver=False)
            return
        except Exception as err:  # noqa: BLE001 - ray.init raises plain Exceptions too
            message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            ray.shutdown()
            # A local instance whose processes start slowly (a busy machine) times out; starting again usually
            # succeeds, the second time with the files already in the page cache.
            if address is None and "timed out during startup" in message and attempt < attempts:
                print(f"note: Ray did not start in time ({message.split('.')[0]}); trying again", file=sys.stderr)
                continue
            where = f"join the Ray cluster at {address}" if address else "start a local Ray instance"
            raise BatchError(f"cannot {where}: {message}") from None


def _ray_shutdown() -> None:
    """Stop the local Ray instance (or leave the cluster) when this run started the connection."""
    global _STARTED_RAY
    if _STARTED_RAY:
        import ray

        ray.shutdown()
        _STARTED_RAY = False
