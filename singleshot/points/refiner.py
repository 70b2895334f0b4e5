"""Points at inference: the registry of bundled point networks (:data:`POINT_MODELS`, ``face``) and
:class:`PointRefiner`, which cuts a square around each detected face, runs the point network on all of them in
one batch (PyTorch, or ONNX Runtime on the network exported on the fly), and maps the points back to the photo."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torch import Tensor

from singleshot.checkpoint import bundled_weights
from singleshot.landmarks import box_crop_matrix, warp_crop
from singleshot.points.model import load_point_net, predict_points
from singleshot.registry import Registry, UnknownNameError

#: name -> zero-argument function returning the path of that point network's bundled weights.
POINT_MODELS: Registry = Registry("point model")


@POINT_MODELS.register("face")
def _face_points() -> Path:
    return bundled_weights("face_points.pt")


class PointRefiner:
    """A trained point network ready to place five points on detected faces.

    Args:
        weights: a point checkpoint (``singleshot points train``), or a registered name (:data:`POINT_MODELS`,
            ``face``: the one bundled with the face detector).
        runtime: ``torch``, ``ort`` (the network exported on the fly and run by ONNX Runtime on one thread,
            without busy-waiting: a handful of 64 px crops gains nothing from more, and the detector's own session
            keeps the other cores), or ``auto`` (``ort`` where ONNX Runtime is installed, else ``torch``).
    """

    def __init__(self, weights: str | Path = "face", runtime: str = "torch") -> None:
        from singleshot.models.layers import fuse_conv_bn

        path = Path(weights)
        if not path.suffix and str(weights) in POINT_MODELS.names():
            path = POINT_MODELS.get(str(weights))()
        elif not path.exists():
            raise UnknownNameError(f"unknown point model {str(weights)!r}: not a file and not one of "
                                   f"{POINT_MODELS.names()}")
        self.net, checkpoint = load_point_net(path)
        fuse_conv_bn(self.net)
        self.input_size = int(self.net.input_size)
        self.crop_scale = float(checkpoint["crop_scale"])
        self.mean_rgb, self.std_rgb = checkpoint["mean_rgb"], checkpoint["std_rgb"]
        self.metrics = checkpoint.get("metrics", {})
        self.weights = path
        if runtime == "auto":
            import importlib.util

            runtime = "ort" if importlib.util.find_spec("onnxruntime") is not None else "torch"
        self.runtime = runtime
        self._session = self._ort_session() if runtime == "ort" else None

    def crops(self, image_rgb: np.ndarray, boxes_xyxy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The network's crops ``(K, S, S, 3)`` (the image's dtype: uint8 for a photo) and their ``(K, 2, 3)``
        photo -> crop matrices."""
        matrices = np.stack([box_crop_matrix(b, self.input_size, self.crop_scale) for b in boxes_xyxy])
        crops = np.empty((len(matrices), self.input_size, self.input_size, 3), image_rgb.dtype)
        for k, m in enumerate(matrices):
            crops[k] = warp_crop(image_rgb, m, self.input_size, keep_dtype=True, area_first=True)
        return crops, matrices

    def predict(self, image_rgb: np.ndarray, boxes_xyxy: np.ndarray | Tensor) -> np.ndarray:
        """``(K, 5, 2)`` float32 points in photo pixels for the ``(K, 4)`` xyxy face boxes of ``image_rgb``
        ``(H, W, 3)`` uint8 RGB."""
        boxes = boxes_xyxy.numpy() if isinstance(boxes_xyxy, Tensor) else np.asarray(boxes_xyxy, np.float64)
        if not len(boxes):
            return np.zeros((0, self.net.num_points, 2), np.float32)
        crops, matrices = self.crops(image_rgb, boxes.reshape(-1, 4))
        if self._session is None:
            points = predict_points(self.net, crops)
        else:
            if crops.dtype != np.uint8:
                crops = np.clip(crops + 0.5, 0, 255).astype(np.uint8)
            out = self._session.run(None, {"crops": crops})[0]
            points = out.reshape(len(crops), -1, 2) * self.input_size
        # the crop matrices are a scale and a shift (no turn): photo = (crop - t) / s
        scale = matrices[:, 0, 0][:, None, None]
        return ((points - matrices[:, None, :, 2]) / scale).astype(np.float32)

    def export_onnx(self, path: str | Path) -> Path:
        """Write the network as ONNX: ``crops (K, 3, S, S)`` normalised RGB -> ``points (K, 2P)`` in crop pixels / S."""
        from singleshot.deploy.onnx_export import export_crop_network

        return export_crop_network(self.net, self.input_size, path, "points")

    def _ort_session(self):
        from singleshot.deploy.runtimes import crop_network_session

        return crop_network_session(self.net, self.input_size, self.mean_rgb, self.std_rgb, "points", "points")
