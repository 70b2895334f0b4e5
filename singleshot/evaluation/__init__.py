"""Evaluation protocols. Each module registers ``(data, predictions, **options) -> EvalResult`` in EVAL_PROTOCOLS.

``data`` is an :class:`~singleshot.structures.AnnotationSet` (ground truth), ``predictions`` maps sample keys to
``(K, 6)`` arrays ``[x1, y1, x2, y2, score, label]`` (see :mod:`singleshot.evaluation.predictions`).
"""

from __future__ import annotations

import numpy as np

from singleshot.evaluation.result import Curve, EvalResult
from singleshot.registry import EVAL_PROTOCOLS
from singleshot.structures import AnnotationSet

# Importing the protocol modules registers them.
from singleshot.evaluation import coco, fddb, voc, widerface  # noqa: F401  isort: skip

#: Protocol used when none is asked for, by dataset format.
DEFAULT_PROTOCOL = {"widerface": "widerface", "fddb": "fddb", "coco": "coco"}


def evaluate(
    data: AnnotationSet, predictions: dict[str, np.ndarray], protocol: str | None = None, **options
) -> EvalResult:
    """Score ``predictions`` against ``data`` with ``protocol`` (default: the format's own, else ``voc``)."""
    name = protocol or DEFAULT_PROTOCOL.get(data.format, "voc")
    # the protocols score boxes: landmark columns (after the sixth) are not theirs to read
    boxes_only = {k: v[:, :6] if getattr(v, "ndim", 0) == 2 and v.shape[1] > 6 else v for k, v in predictions.items()}
    return EVAL_PROTOCOLS.get(name)(data, boxes_only, **options)


def list_protocols() -> list[str]:
    """Registered protocol names."""
    return EVAL_PROTOCOLS.names()


__all__ = ["Curve", "EvalResult", "evaluate", "list_protocols"]
