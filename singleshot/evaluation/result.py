"""The result every evaluation protocol returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Curve:
    """One curve of a result, e.g. precision against recall for one WIDER setting or VOC class.

    Attributes:
        name: legend label (``"easy"``, ``"face"``, ``"discrete"``...).
        x, y: ``(T,)`` float arrays (recall and precision, or false positives and true-positive rate).
        x_label, y_label: axis names.
    """

    name: str
    x: np.ndarray
    y: np.ndarray
    x_label: str = "recall"
    y_label: str = "precision"


@dataclass
class EvalResult:
    """Metrics, curves and the protocol's settings, so every figure travels with how it was measured.

    Attributes:
        protocol: ``"widerface"``, ``"fddb"``, ``"voc"`` or ``"coco"``.
        metrics: name -> value, in the order to print (e.g. ``{"easy": 0.91, "medium": 0.89, "hard": 0.75}``).
        curves: curves to plot.
        details: settings and counts (IoU threshold, number of images and objects, ...), JSON-serialisable.
    """

    protocol: str
    metrics: dict[str, float]
    curves: list[Curve] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict (curves omitted: they go to the plot)."""
        return {"protocol": self.protocol, "metrics": dict(self.metrics), "details": dict(self.details)}
