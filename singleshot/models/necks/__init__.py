"""Necks: modules between backbone and heads (SSD extras; FEM later)."""

from singleshot.models.necks.ssd_extras import SSD300_EXTRAS, ExtraBlock, SSDExtras

__all__ = ["SSD300_EXTRAS", "ExtraBlock", "SSDExtras"]
