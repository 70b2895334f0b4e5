"""singleshot: train, evaluate and deploy single-shot (SSD-family) detectors."""

from singleshot.api import detect, evaluate, export, train
from singleshot.landmarks import align_faces, blur_faces
from singleshot.models import SingleShotDetector, create_model, list_models
from singleshot.postprocess import postprocess
from singleshot.predictor import Detector
from singleshot.structures import Detections

__all__ = [
    "Detections", "Detector", "SingleShotDetector", "align_faces", "blur_faces", "create_model", "detect", "evaluate",
    "export", "list_models", "postprocess", "train",
]
__version__ = "0.1.0"
