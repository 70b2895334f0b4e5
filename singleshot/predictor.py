"""``Detector``: run a trained model on images (the API behind ``singleshot detect``).

A ``Detector`` composes a runtime (PyTorch through :class:`singleshot.inference.ModelPredictor`, or an ONNX file
on ONNX Runtime / OpenCV DNN) with the face attributes. Pre-processing is :mod:`singleshot.inference`'s: aspect
kept, long side ``input_size``, padded right and bottom to a multiple of 32; boxes come back in pixels of each
original image.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from singleshot.checkpoint import (
    build_model_from_checkpoint,
    bundled_weights,
    check_detector,
    checkpoint_vote_iou,
    load_checkpoint,
)
from singleshot.errors import SingleshotError
from singleshot.images import ImageError, decode_image, image_problem
from singleshot.inference import (
    PAD_MULTIPLE,
    ModelPredictor,
    padded_size,
    resize_keep_aspect,
    round_up,
    to_original_pixels,
)
from singleshot.models import SingleShotDetector
from singleshot.models.layers import fuse_conv_bn
from singleshot.postprocess import merge_large_faces
from singleshot.structures import Detections

ImageInput = np.ndarray | str | Path


class DetectorError(SingleshotError, ValueError):
    """A detector that cannot be built as asked (runtime, file); the message names the file and the problem."""


class WeightsNotFoundError(SingleshotError, FileNotFoundError):
    """The weights file does not exist."""


#: A photo enlarged at least this many times to reach the input size also runs at half that size (``large_face_pass``).
SMALL_PHOTO_ENLARGEMENT = 1.5

#: Long side, in pixels of the main input, from which a detection of the large-face pass is taken: half of the
#: 320x320 training crops. Larger faces are rare in those crops, and a small photo enlarged 2.5 times shows them
#: at a fifth of the detail their size suggests; at half the input size they are what the model was trained on.
LARGE_FACE_PX = 160


#: Padding colour of ONNX inputs when the file does not say its mean (ImageNet's, every zoo model's).
_MEAN_FOR_PADDING = (123.675, 116.28, 103.53)


def _has_onnxruntime() -> bool:
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None


@dataclass
class Timing:
    """Milliseconds spent in each stage of the last :meth:`Detector.detect` call."""

    preprocess_ms: float = 0.0
    network_ms: float = 0.0
    postprocess_ms: float = 0.0
    attributes_ms: float = 0.0
    points_ms: float = 0.0


#: Runtimes a :class:`Detector` can run on.
RUNTIMES = ("torch", "ort", "opencv")


class Detector:
    """A trained detector ready to find objects in images.

    Args:
        weights: a checkpoint (``.pt``) or an exported ONNX file (``singleshot export``); None loads the face model
            bundled with the package.
        input_size: long side of the inference resolution in pixels (aspect ratio kept).
        threads: threads of the runtime (None: its default).
        fuse: fold BatchNorm into the convolutions (torch runtime; same outputs, faster).
        runtime: ``torch`` (PyTorch), ``ort`` (ONNX Runtime) or ``opencv`` (OpenCV DNN); default ``torch`` for a
            checkpoint and ``ort`` for an ``.onnx`` file. A checkpoint given to ``ort`` or ``opencv`` is exported
            on the fly (dynamic size for ``ort``; for ``opencv``, whose graphs have a fixed size, a landscape 4:3
            input of ``input_size`` pixels wide). Same API and same detections on every runtime.
        box_vote: apply the box voting the model recommends (its checkpoint's or ONNX file's ``vote_iou``, set by
            its training config); False: plain NMS. The attribute ``vote_iou`` holds the value in use (None: off).
        points: five face points for every detection from a second-stage point network
            (:class:`singleshot.points.PointRefiner`): ``auto`` (the bundled ``face`` point network for a face
            detector, one whose classes are background and face, without a landmark head of its own), a registered
            name or a point checkpoint, or None (no points unless the model has a landmark head).
        large_face_pass: ``auto`` (on for a face detector, one whose classes are background and face: the models
            it was measured on), True or False. On: a photo enlarged :data:`SMALL_PHOTO_ENLARGEMENT` times or more
            to reach ``input_size`` (a 256 px face crop at 640) runs again at half ``input_size``, and its
            detections of :data:`LARGE_FACE_PX` or more (at ``input_size``) replace those of the main pass
            (:func:`singleshot.postprocess.merge_large_faces`, the multi-scale test of S3FD and PyramidBox). A second,
            smaller network run on such photos only; photos of ``input_size`` or near it, models with relative
            priors (SSD300) and runtimes of a fixed input size run once.

    Example:
        >>> detector = Detector()                      # the bundled face model
        >>> faces = detector.detect("photo.jpg", min_score=0.5)
        >>> faces.boxes_xyxy, faces.scores
    """

    def __init__(
        self,
        weights: str | Path | None = None,
        input_size: int = 640,
        threads: int | None = None,
        fuse: bool = True,
        runtime: str | None = None,
        box_vote: bool = True,
        points: str | Path | None = "auto",
        large_face_pass: bool | str = "auto",
    ) -> None:
        path = Path(weights) if weights is not None else bundled_weights()
        self._points_source = points
        is_onnx = path.suffix.lower() == ".onnx"
        runtime = runtime or ("ort" if is_onnx else "torch")
        if runtime not in RUNTIMES:
            raise DetectorError(f"unknown runtime {runtime!r} (runtimes: {', '.join(RUNTIMES)})")
        self.runtime = runtime
        self.weights = path
        self._backend = None
        self._threads = threads
        if is_onnx:
            if runtime == "torch":
                raise DetectorError(f"{path}: an ONNX file runs with runtime 'ort' or 'opencv', not 'torch'")
            if not path.is_file():
                raise WeightsNotFoundError(f"{path}: ONNX file not found")
            self._setup_onnx(path, input_size, threads)
            if not box_vote:
                self.vote_iou = None
        else:
            self._setup_checkpoint(path, input_size, threads, fuse, box_vote)
        if points is not None and str(points) not in ("auto", "off"):
            _ = self.point_refiner  # a named point network is loaded (and checked) now, not at the first photo
        if isinstance(large_face_pass, str) and large_face_pass != "auto":
            raise DetectorError(f"large_face_pass must be True, False or 'auto', got {large_face_pass!r}")
        self.large_face_pass = self._is_face_model() if large_face_pass == "auto" else bool(large_face_pass)

    def _is_face_model(self) -> bool:
        """Whether the classes are background and face (what ``auto`` settings key on)."""
        return [n.lower() for n in self.class_names] == ["background", "face"]

    def _setup_checkpoint(self, path: Path, input_size: int, threads: int | None, fuse: bool, box_vote: bool) -> None:
        runtime = self.runtime
        checkpoint = load_checkpoint(path)
        model = build_model_from_checkpoint(checkpoint, str(path)).eval()
        if fuse:
            fuse_conv_bn(model)  # same outputs, about a third faster for a small BatchNorm network
        model = model.to(memory_format=torch.channels_last)
        self._setup(model, checkpoint["class_names"], checkpoint["mean_rgb"], checkpoint["std_rgb"], input_size, threads)
        recommended = checkpoint_vote_iou(checkpoint)
        if runtime != "torch":
            import tempfile

            from singleshot.deploy.onnx_export import export_onnx

            folder = Path(tempfile.mkdtemp(prefix="singleshot-"))
            fixed = (round_up(int(input_size) * 3 // 4, PAD_MULTIPLE), round_up(int(input_size), PAD_MULTIPLE))
            onnx_path = export_onnx(
                model, folder / f"{path.stem}.onnx", self.class_names, self.mean_rgb, self.std_rgb,
                input_size=fixed, dynamic=runtime == "ort", model_name=str(checkpoint.get("model_name", "")),
                vote_iou=recommended,
            )
            self._setup_onnx(onnx_path, input_size, threads)
        self.vote_iou = recommended if box_vote else None

    def _setup_onnx(self, path: Path, input_size: int, threads: int | None) -> None:
        from singleshot.deploy.onnx_export import read_detector_metadata
        from singleshot.deploy.runtimes import make_backend

        meta = read_detector_metadata(path)
        names = meta.get("singleshot_class_names", "background,object").split(",")
        self._backend = make_backend(self.runtime, path, threads)
        if self._backend.fixed_size is None and meta.get("singleshot_dynamic") == "false":
            h, w = (int(v) for v in meta["singleshot_input_size"].split("x"))
            self._backend.fixed_size = (h, w)
        self.model = None
        self.class_names = names
        mean = meta.get("singleshot_mean_rgb")
        self.mean_rgb = tuple(float(v) for v in mean.split(",")) if mean else _MEAN_FOR_PADDING
        self.std_rgb = None
        self.input_size = int(input_size)
        self.timing = Timing()
        self._attribute_cache = {}
        self._refiner = None
        vote = meta.get("singleshot_vote_iou")
        self.vote_iou = float(vote) if vote else None
        self._square = meta.get("singleshot_square_input") == "true"  # PriorSpec.square_input, as ModelPredictor

    @classmethod
    def from_model(
        cls,
        model: SingleShotDetector,
        class_names: Sequence[str],
        mean_rgb: Sequence[float],
        std_rgb: Sequence[float],
        input_size: int = 640,
    ) -> Detector:
        """Wrap a model in memory (e.g. during training, for validation)."""
        detector = cls.__new__(cls)
        detector._setup(model, class_names, mean_rgb, std_rgb, input_size, None)
        detector.weights = None
        detector.runtime = "torch"
        detector._backend = None
        detector._points_source = None
        detector.large_face_pass = detector._is_face_model()
        return detector

    def _setup(self, model, class_names, mean_rgb, std_rgb, input_size, threads) -> None:
        if threads is not None:
            torch.set_num_threads(threads)
        self._torch = ModelPredictor(model, mean_rgb, std_rgb, input_size)
        self.model = self._torch.model
        self.class_names = list(class_names)
        self.mean_rgb = tuple(float(v) for v in mean_rgb)
        self.std_rgb = tuple(float(v) for v in std_rgb)
        self.input_size = int(input_size)
        self.timing = Timing()
        self._attribute_cache: dict = {}
        self._refiner = None
        self.vote_iou: float | None = None

    def preprocess(
        self, images: Sequence[np.ndarray], input_size: int | None = None
    ) -> tuple[torch.Tensor | np.ndarray, list[float]]:
        """RGB uint8 images -> ``(B, 3, H, W)`` network input (right/bottom padded) and each image's scale.

        PyTorch: the normalised batch (:meth:`singleshot.inference.ModelPredictor.preprocess`). ONNX runtimes: a
        float32 numpy array in 0-255 padded with the mean colour (the graph normalises), the same network input after
        normalisation; a fixed-size graph gets every image fitted inside its size.
        """
        if self._backend is None:
            return self._torch.preprocess(images, input_size)
        fixed = self._backend.fixed_size
        pairs = [resize_keep_aspect(image, input_size or self.input_size, fit=fixed) for image in images]
        resized = [p[0] for p in pairs]
        height, width = fixed if fixed else padded_size(resized)
        if not fixed and self._square:
            height = width = max(height, width)
        blob = np.empty((len(images), 3, height, width), np.float32)
        for i, r in enumerate(resized):
            h, w = r.shape[:2]
            if (h, w) != (height, width):  # padding: the mean colour (zero after the graph's normalisation)
                blob[i] = np.asarray(self.mean_rgb, np.float32)[:, None, None]
            # channel planes via cv2.split: about 2x faster than a strided numpy transpose of the HWC image
            for c, plane in enumerate(cv2.split(r)):
                blob[i, c, :h, :w] = plane
        return blob, [p[1] for p in pairs]

    @torch.no_grad()
    def detect(
        self,
        images: ImageInput | Sequence[ImageInput],
        min_score: float = 0.5,
        max_overlap: float = 0.45,
        top_k: int = 200,
        input_size: int | None = None,
        attributes: Sequence[str] | None = None,
    ) -> Detections | list[Detections]:
        """Detect objects in one image or a batch.

        Args:
            images: an RGB uint8 array ``(H, W, 3)``, an image path, or a list of them (run as one batch).
            min_score: lowest class probability reported.
            max_overlap: NMS IoU threshold.
            top_k: most detections per image.
            input_size: long side of the inference resolution (default: the detector's ``input_size``).
            attributes: attributes to score on every detection, by registered name (``smile``) or attribute
                checkpoint path; each appears in ``Detections.attributes`` as a ``(K,)`` probability.

        Returns:
            :class:`Detections` (boxes in pixels of the original image) for one image, a list for a list.
        """
        import time

        single = isinstance(images, (np.ndarray, str, Path))
        items = [images] if single else list(images)
        arrays = [self._as_array(x) for x in items]
        size = int(input_size or self.input_size)
        results, times = self._run_pass(arrays, size, min_score, max_overlap, top_k)
        coarse = self.large_face_pass_size(size)
        if coarse is not None:
            for i, array in enumerate(arrays):
                if size < SMALL_PHOTO_ENLARGEMENT * max(array.shape[:2]):
                    continue
                found, more = self._run_pass([array], coarse, min_score, max_overlap, top_k)
                start = time.perf_counter()
                # a face of LARGE_FACE_PX at the main scale, in the photo's pixels
                large_side = LARGE_FACE_PX * max(array.shape[:2]) / size
                results[i] = merge_large_faces(results[i], found[0], large_side, max_overlap, top_k)
                more[2] += (time.perf_counter() - start) * 1000  # the merge is post-processing
                times = [a + b for a, b in zip(times, more)]
        points_ms = self._place_points(results, arrays)  # before the attributes: aligned crops need the points
        self.timing = Timing(*times, self._score_attributes(results, arrays, attributes), points_ms)
        return results[0] if single else results

    def large_face_pass_size(self, input_size: int | None = None) -> int | None:
        """The long side of the large-face pass at ``input_size`` (default: the detector's), run on photos enlarged
        at least :data:`SMALL_PHOTO_ENLARGEMENT` times; None: this detector runs one pass (``large_face_pass`` off,
        relative priors, or a runtime of a fixed input size). Relative priors (SSD's) shrink with the input: at half
        size such a model sees the same objects against the same priors, with less detail."""
        square = self._square if self._backend is not None else self._torch.square
        if not self.large_face_pass or square or (self._backend is not None and self._backend.fixed_size):
            return None
        return round_up(int(input_size or self.input_size) // 2, PAD_MULTIPLE)  # half, on the padding grid

    def _run_pass(self, arrays: list[np.ndarray], size: int, min_score: float, max_overlap: float,
                  top_k: int) -> tuple[list[Detections], list[float]]:
        """One scale: the images at long side ``size`` through the network and post-processing -> their detections
        in original pixels (no points, no attributes) and the milliseconds of the three stages."""
        import time

        start = time.perf_counter()
        batch, scales = self.preprocess(arrays, size)
        t1 = time.perf_counter()
        if self._backend is not None:
            from singleshot.deploy.numpy_ops import postprocess_numpy

            boxes, scores = self._backend.run(batch)
            t2 = time.perf_counter()
            results = [
                Detections(torch.from_numpy(b[:, :4]), torch.from_numpy(s), torch.from_numpy(lab),
                           landmarks=torch.from_numpy(b[:, 4:]).reshape(len(b), (b.shape[1] - 4) // 2, 2)
                           if b.shape[1] > 4 else None)
                for b, s, lab in postprocess_numpy(boxes, scores, min_score=min_score, max_overlap=max_overlap,
                                                   top_k=top_k, vote_iou=self.vote_iou)
            ]
        else:
            outputs = self._torch.forward(batch)
            t2 = time.perf_counter()
            self._torch.vote_iou = self.vote_iou
            results = self._torch.postprocess(*outputs[:2], tuple(batch.shape[-2:]), min_score, max_overlap, top_k,
                                              landm=outputs[2] if len(outputs) > 2 else None)
        to_original_pixels(results, scales, arrays)
        t3 = time.perf_counter()
        return results, [(t1 - start) * 1000, (t2 - t1) * 1000, (t3 - t2) * 1000]

    @property
    def point_refiner(self):
        """The :class:`singleshot.points.PointRefiner` that places this detector's five points (None: the model's
        own landmark head, or no points), loaded on first use and kept."""
        source = getattr(self, "_points_source", None)
        if source is None or str(source) == "off":
            return None
        if self._refiner is None:
            if str(source) == "auto":
                from singleshot.points import POINT_MODELS

                if self.has_landmarks or not self._is_face_model():
                    self._points_source = None
                    return None
                if not POINT_MODELS.get("face")().is_file():
                    self._points_source = None
                    return None
                source = "face"
            from singleshot.points import PointRefiner

            # ONNX Runtime whenever installed, whatever the detector's runtime (as the attributes, for the same
            # reason: PyTorch's per-call overhead dominates a handful of 64 px crops)
            self._refiner = PointRefiner(source, runtime="auto")
        return self._refiner

    def _place_points(self, results: list[Detections], arrays: list[np.ndarray]) -> float:
        """Fill each detection's five points from the point network; returns the milliseconds spent."""
        import time

        refiner = self.point_refiner
        if refiner is None:
            return 0.0
        start = time.perf_counter()
        for det, array in zip(results, arrays):
            det.landmarks = torch.from_numpy(refiner.predict(array, det.boxes_xyxy))
        return (time.perf_counter() - start) * 1000

    @property
    def has_landmarks(self) -> bool:
        """Whether the model itself predicts five face points (a landmark head; an ONNX graph with a landmarks
        output); :attr:`point_refiner` gives points to a model without them."""
        if self._backend is not None:
            outputs = getattr(self._backend, "outputs", None)
            if outputs is None:  # OpenCV DNN: the graph's output names
                outputs = list(self._backend.net.getUnconnectedOutLayersNames())
            return "landmarks" in outputs
        return bool(getattr(self.model.head, "num_landmarks", 0))

    def attribute(self, name: str):
        """The :class:`singleshot.attributes.AttributeClassifier` for ``name`` (a registered name or a checkpoint),
        loaded once and kept."""
        from singleshot.attributes import AttributeClassifier

        cache = self._attribute_cache
        if name not in cache:
            # the attribute network runs on ONNX Runtime whenever it is installed, whatever the detector's runtime:
            # torch's per-call overhead dominates a batch of a few small crops (5 faces at 640x480, PyTorch
            # detector: +23-29% per frame with the head on PyTorch, +12-13% on ONNX Runtime; docs/attributes.md)
            runtime = "ort" if _has_onnxruntime() else "torch"
            cache[name] = AttributeClassifier(name, threads=getattr(self, "_threads", None), runtime=runtime)
        return cache[name]

    def _score_attributes(self, results: list[Detections], arrays: list[np.ndarray],
                          attributes: Sequence[str] | None) -> float:
        """Add each asked attribute's probabilities to the detections; returns the milliseconds spent."""
        import time

        if not attributes:
            return 0.0
        start = time.perf_counter()
        for name in attributes:
            classifier = self.attribute(name)
            for det, array in zip(results, arrays):
                det.attributes[classifier.name] = torch.from_numpy(classifier.predict(array, det.boxes_xyxy,
                                                                                       det.landmarks))
        return (time.perf_counter() - start) * 1000

    @staticmethod
    def _as_array(image: ImageInput) -> np.ndarray:
        if isinstance(image, np.ndarray):
            if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
                raise DetectorError(f"expected an (H, W, 3) uint8 RGB image, got {image.shape} {image.dtype}")
            return image
        decoded = decode_image(Path(image))
        if decoded is None:  # why, in one phrase: not found, not an image, or over the pixel limit
            raise ImageError(f"{image}: {image_problem(Path(image)) or 'image not readable'}")
        return decoded[0]


#: Colours (BGR) of the five points when drawn: eyes, nose, mouth corners.
_POINT_COLOURS = ((255, 128, 0), (255, 128, 0), (0, 200, 0), (0, 0, 255), (0, 0, 255))


def weights_class_names(weights: str | Path | None) -> list[str]:
    """The class names of a detector's weights (a ``.pt`` checkpoint, an ONNX export, or None for the bundled
    model), read without building the model: index 0 is the background."""
    path = Path(weights) if weights is not None else bundled_weights()
    if path.suffix.lower() == ".onnx":
        from singleshot.deploy.onnx_export import read_detector_metadata

        if not path.is_file():
            raise WeightsNotFoundError(f"{path}: ONNX file not found")
        return read_detector_metadata(path).get("singleshot_class_names", "background,object").split(",")
    return list(check_detector(load_checkpoint(path), str(path))["class_names"])


def draw_detections(image_rgb: np.ndarray, detections: Detections, class_names: Sequence[str]) -> np.ndarray:
    """A BGR copy of ``image_rgb`` with each detection's box and score drawn (ready for ``cv2.imwrite``)."""
    canvas = cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR)
    thickness = max(1, round(max(canvas.shape[:2]) / 400))
    show_names = len(class_names) > 2
    attributes = {name: values.tolist() for name, values in detections.attributes.items()}
    for i, (box, score, label) in enumerate(
        zip(detections.boxes_xyxy.tolist(), detections.scores.tolist(), detections.labels.tolist())
    ):
        x1, y1, x2, y2 = (round(v) for v in box)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), (0, 220, 0), thickness)
        if detections.landmarks is not None:  # BGR: eyes blue, nose green, mouth corners red (left, right alike)
            for (px, py), colour in zip(detections.landmarks[i].tolist(), _POINT_COLOURS):
                if math.isfinite(px) and math.isfinite(py):
                    cv2.circle(canvas, (round(px), round(py)), thickness + 1, colour, -1, cv2.LINE_AA)
        text = f"{class_names[label]} {score:.2f}" if show_names and label < len(class_names) else f"{score:.2f}"
        for name, values in attributes.items():
            text += f" {name} {values[i]:.2f}"
        scale = 0.4 * thickness
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        top = max(0, y1 - th - 4)
        cv2.rectangle(canvas, (x1, top), (x1 + tw + 2, top + th + 4), (0, 220, 0), -1)
        cv2.putText(canvas, text, (x1 + 1, top + th + 1), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return canvas
