"""Runtimes for exported graphs: ONNX Runtime and OpenCV DNN behind one ``run(blob) -> (boxes, scores)``.

A graph with a ``landmarks`` output has its points appended to the boxes: ``boxes (N, P, 4 + 2L)``, the layout
:func:`singleshot.deploy.numpy_ops.postprocess_numpy` keeps through NMS and voting."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from singleshot.errors import SingleshotError


class RuntimeUnavailableError(SingleshotError, ImportError):
    """The runtime's package is not installed; the message gives the pip command."""


class BackendError(SingleshotError, ValueError):
    """A runtime that refuses the graph (invalid or unsupported); the message names the file."""


class OrtBackend:
    """ONNX Runtime on the CPU. ``fixed_size``: ``(H, W)`` the graph requires, or None for a dynamic graph."""

    name = "ort"

    def __init__(self, path: Path, threads: int | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise RuntimeUnavailableError("runtime 'ort' needs onnxruntime: pip install onnxruntime") from None
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
            options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as err:  # noqa: BLE001 - onnxruntime's Fail, InvalidGraph, InvalidProtobuf...: all "unusable"
            detail = f"{type(err).__name__}: {err}".splitlines()[0]
            raise BackendError(f"{path}: ONNX Runtime cannot load this graph ({detail})") from None
        self.outputs = [o.name for o in self.session.get_outputs() if o.name in ("boxes", "scores", "landmarks")]
        shape = self.session.get_inputs()[0].shape  # [N, 3, H, W], symbolic names for dynamic axes
        self.fixed_size = (shape[2], shape[3]) if isinstance(shape[2], int) and isinstance(shape[3], int) else None

    def run(self, blob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(N, 3, H, W)`` float32 0-255 -> ``boxes (N, P, 4 [+ 2L])`` input pixels, ``scores (N, P, C - 1)``."""
        found = dict(zip(self.outputs, self.session.run(self.outputs, {"image": blob})))
        return _with_points(found), found["scores"]


class OpenCVBackend:
    """OpenCV DNN (``cv2.dnn.readNetFromONNX``); its graphs have a fixed input size, read from the file."""

    name = "opencv"

    def __init__(self, path: Path, threads: int | None = None) -> None:
        import cv2

        if threads:
            cv2.setNumThreads(int(threads))
        try:
            self.net = cv2.dnn.readNetFromONNX(str(path))
        except cv2.error as err:
            raise BackendError(
                f"{path}: OpenCV DNN cannot read this graph (export it with a fixed --input-size, not --dynamic): "
                f"{str(err).strip().splitlines()[-1]}"
            ) from None
        self.fixed_size: tuple[int, int] | None = None  # set from the file's metadata by the Detector

    def run(self, blob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.net.setInput(blob, "image")
        names = [n for n in ("boxes", "scores", "landmarks") if n in self.net.getUnconnectedOutLayersNames()]
        found = dict(zip(names, self.net.forward(names)))
        return _with_points(found), found["scores"]


def _with_points(outputs: dict[str, np.ndarray]) -> np.ndarray:
    """The graph's boxes, with its landmarks appended as extra columns when it has them."""
    if "landmarks" not in outputs:
        return outputs["boxes"]
    return np.concatenate((outputs["boxes"], outputs["landmarks"]), axis=-1)


def make_backend(runtime: str, path: Path, threads: int | None = None) -> OrtBackend | OpenCVBackend:
    """The backend of ``runtime`` (``ort`` or ``opencv``) for the ONNX file ``path``."""
    if runtime == "ort":
        return OrtBackend(path, threads)
    if runtime == "opencv":
        return OpenCVBackend(path, threads)
    raise ValueError(f"no ONNX backend for runtime {runtime!r}")


def crop_network_session(net, input_size: int, mean_rgb, std_rgb, output_name: str, prefix: str):
    """An ONNX Runtime session for a small per-face network (points, attributes) that takes the uint8 crops as
    cut, ``crops (K, S, S, 3)`` RGB -> ``output_name (K, ...)``: the graph normalises them
    (:class:`singleshot.models.layers.Uint8Input`), exported to a temporary file named by ``prefix``.

    One thread, in the caller's, and no busy-waiting: the detector's session runs right before this one and its
    pool threads keep spinning on the other cores for a while after each run. A second pool here fights them for
    the cores (measured at 640x480, 2 threads, 5 faces: +109% per frame with 2 threads, +44% with 1); a handful of
    small crops gains nothing from more threads anyway.
    """
    import tempfile

    import onnxruntime as ort

    from singleshot.deploy.onnx_export import export_crop_network

    path = Path(tempfile.mkdtemp(prefix=f"singleshot-{prefix}-")) / f"{prefix}_uint8.onnx"
    export_crop_network(net, input_size, path, output_name, uint8_mean_std=(mean_rgb, std_rgb))
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
