"""Five face points from a second stage: a small network on a square crop around each detected face.

The bundled detector finds faces; :class:`PointRefiner` places the five points (left eye, right eye, nose, left and
right mouth corner, RetinaFace's order) on each of them, whatever the detector, so ``Detections.landmarks`` is
filled for the bundled model on every runtime. A point network is trained from any detection sets whose faces have
points (human ones, or a teacher's from ``singleshot kindle``) by ``singleshot points train CONFIG``.

Modules, lower layers first (each imports only those above it):

* :mod:`~singleshot.points.config` -- :class:`PointConfig` and the error :class:`PointError`;
* :mod:`~singleshot.points.data` -- faces cut out once into a cache, and the training augmentation;
* :mod:`~singleshot.points.model` -- checkpoints, normalisation, the network's predictions on crops;
* :mod:`~singleshot.points.training` -- :func:`train_points` (wing loss, resumable);
* :mod:`~singleshot.points.refiner` -- :data:`POINT_MODELS` and :class:`PointRefiner` (PyTorch or ONNX Runtime).
"""

from __future__ import annotations

from singleshot.points.config import PointConfig, PointError
from singleshot.points.data import FLIP_ORDER, FaceSet, augment_face, extract_faces
from singleshot.points.model import load_point_net, predict_points
from singleshot.points.refiner import POINT_MODELS, PointRefiner
from singleshot.points.training import PointResult, save_point_weights, train_points

__all__ = [
    "FLIP_ORDER",
    "POINT_MODELS",
    "FaceSet",
    "PointConfig",
    "PointError",
    "PointRefiner",
    "PointResult",
    "augment_face",
    "extract_faces",
    "load_point_net",
    "predict_points",
    "save_point_weights",
    "train_points",
]
