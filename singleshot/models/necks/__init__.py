"""Necks: modules between backbone and heads (SSD extras; the DSFD feature enhance module)."""

from singleshot.models.necks.fem import FEMBranches, FEMNeck
from singleshot.models.necks.ssd_extras import SSD300_EXTRAS, ExtraBlock, SSDExtras

__all__ = ["SSD300_EXTRAS", "ExtraBlock", "FEMBranches", "FEMNeck", "SSDExtras"]
