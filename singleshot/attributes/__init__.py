"""Face attributes by transfer learning: a small head on the face detector's backbone (the Smiling Bot's smile).

The face-detector author planned to "sneak in" a smile class and fine-tune. Here an attribute is a binary
classifier on face crops: the detector's backbone (its ImageNet-free, face-trained features; frozen, or
fine-tuned at a low rate) and a small head (global average pooling of the two deepest maps, a 64-unit layer,
one logit). At inference each detected face is cut out as a square around its box, resized, and classified in
one batch. Which attributes exist is data: :data:`ATTRIBUTES` maps a name to its weights (``smile`` ships in the
package); a new attribute is a YAML config (``configs/attributes/smile.yaml``) trained by
``singleshot attribute train``, not new code.

Modules, lower layers first (each imports only those above it):

* :mod:`~singleshot.attributes.config` -- :class:`AttributeConfig` and the error :class:`AttributeError_`;
* :mod:`~singleshot.attributes.data` -- folders of crops, crops cut around boxes or from a detection dataset,
  augmentation, normalisation;
* :mod:`~singleshot.attributes.model` -- :class:`AttributeNet`, built from a detector or an attribute checkpoint;
* :mod:`~singleshot.attributes.training` -- :func:`train_attribute` (distillation, mixup, held-out split), ROC AUC;
* :mod:`~singleshot.attributes.classifier` -- :data:`ATTRIBUTES` and :class:`AttributeClassifier` (inference on
  PyTorch or ONNX Runtime).
"""

from __future__ import annotations

from singleshot.attributes.classifier import ATTRIBUTES, AttributeClassifier
from singleshot.attributes.config import AttributeConfig, AttributeError_
from singleshot.attributes.data import augment_batch, cut_face_crops, square_crops
from singleshot.attributes.model import AttributeNet, load_attribute_net, predict_crops
from singleshot.attributes.training import roc_auc, train_attribute

__all__ = [
    "ATTRIBUTES",
    "AttributeClassifier",
    "AttributeConfig",
    "AttributeError_",
    "AttributeNet",
    "augment_batch",
    "cut_face_crops",
    "load_attribute_net",
    "predict_crops",
    "roc_auc",
    "square_crops",
    "train_attribute",
]
