"""Models: backbones, necks, heads, the detector and the zoo of named recipes."""

from singleshot.models.detector import SingleShotDetector
from singleshot.models.zoo import ModelInfo, create_model, list_models, model_info

__all__ = ["ModelInfo", "SingleShotDetector", "create_model", "list_models", "model_info"]
