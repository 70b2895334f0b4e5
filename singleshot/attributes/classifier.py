"""Attributes at inference: the registry of bundled attributes (:data:`ATTRIBUTES`, ``smile``) and
:class:`AttributeClassifier`, which cuts detected faces out of a photo and scores them in one batch, on PyTorch or
on an ONNX Runtime session of the network exported on the fly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from singleshot.attributes.data import aligned_crops, square_crops
from singleshot.attributes.model import load_attribute_net, predict_crops
from singleshot.checkpoint import bundled_weights
from singleshot.registry import Registry, UnknownNameError

#: name -> zero-argument function returning the path of that attribute's bundled weights.
ATTRIBUTES: Registry = Registry("attribute")


@ATTRIBUTES.register("smile")
def _smile_weights() -> Path:
    return bundled_weights("smile.pt")


class AttributeClassifier:
    """A trained attribute ready to score detected faces.

    Args:
        weights: an attribute checkpoint, or a registered name (:data:`ATTRIBUTES`, e.g. ``smile``).
        threads: PyTorch threads (None: leave as is); the ONNX Runtime session always runs on one thread (see
            ``_ort_session``).
        runtime: ``torch``, or ``ort`` (the network exported on the fly to ONNX Runtime, several times faster for
            a handful of small crops; :class:`~singleshot.predictor.Detector` picks it whenever onnxruntime is installed).
    """

    def __init__(self, weights: str | Path, threads: int | None = None, runtime: str = "torch") -> None:
        from singleshot.models.layers import fuse_conv_bn

        path = Path(weights)
        if not path.suffix and str(weights) in ATTRIBUTES.names():
            path = ATTRIBUTES.get(str(weights))()
        elif not path.exists() and str(weights) not in ATTRIBUTES.names():
            raise UnknownNameError(f"unknown attribute {str(weights)!r}: not a file and not one of {ATTRIBUTES.names()}")
        self.net, checkpoint = load_attribute_net(path)
        meta = checkpoint["backbone"]
        fuse_conv_bn(self.net)
        if threads is not None:
            torch.set_num_threads(threads)
        self.name = checkpoint["name"]
        self.labels = list(checkpoint["labels"])
        self.input_size = int(checkpoint["input_size"])
        self.crop_scale = float(checkpoint["crop_scale"])
        self.mean_rgb, self.std_rgb = meta["mean_rgb"], meta["std_rgb"]
        self.metrics = checkpoint.get("metrics", {})
        self.flip_tta = bool(checkpoint.get("flip_tta", False))
        # trained on crops aligned by five points: detections with points are aligned the same way
        self.align = bool(checkpoint.get("align", False))
        self.runtime = runtime
        self._session = self._ort_session() if runtime == "ort" else None
        self.weights = path

    def predict(self, image_rgb: np.ndarray, boxes_xyxy: np.ndarray | Tensor,
                landmarks: np.ndarray | Tensor | None = None) -> np.ndarray:
        """Probability of outcome 1 (e.g. smiling) for each box, ``(K,)`` float32.

        ``landmarks`` ``(K, 5, 2)``: the detections' points; an attribute trained on aligned crops (``align``)
        aligns each face by them (a face without points, or no ``landmarks``: a square crop around its box).
        """
        boxes = boxes_xyxy.numpy() if isinstance(boxes_xyxy, Tensor) else np.asarray(boxes_xyxy)
        if not len(boxes):
            return np.zeros(0, np.float32)
        if self.align:
            points = landmarks.numpy() if isinstance(landmarks, Tensor) else landmarks
            crops = aligned_crops(image_rgb, boxes, points, self.input_size, self.crop_scale, self.mean_rgb)
        else:
            crops = square_crops(image_rgb, boxes, self.input_size, self.crop_scale, self.mean_rgb)
        if self._session is None:
            return predict_crops(self.net, crops, self.mean_rgb, self.std_rgb, flip_tta=self.flip_tta).astype(np.float32)
        # the uint8 crops go straight in (the graph normalises them, see _ort_session); numpy, not torch, around
        # the call: a torch op here wakes torch's OpenMP pool, whose threads then spin-wait (Intel OpenMP's default
        # block time is 200 ms) against ONNX Runtime's on the same cores
        if self.flip_tta:
            crops = np.concatenate((crops, crops[:, :, ::-1]))
        logits = self._session.run(None, {"crops": np.ascontiguousarray(crops)})[0][:, 0]
        probs = 1.0 / (1.0 + np.exp(-logits))
        if self.flip_tta:
            probs = (probs[: len(boxes)] + probs[len(boxes) :]) / 2
        return probs.astype(np.float32)

    def export_onnx(self, path: str | Path) -> Path:
        """Write the network as ONNX: ``crops (K, 3, S, S)`` normalised RGB -> ``logits (K, 1)`` (outcome 1)."""
        from singleshot.deploy.onnx_export import export_crop_network

        return export_crop_network(self.net, self.input_size, path, "logits")

    def _ort_session(self):
        from singleshot.deploy.runtimes import crop_network_session

        return crop_network_session(self.net, self.input_size, self.mean_rgb, self.std_rgb, "logits", "attr")
