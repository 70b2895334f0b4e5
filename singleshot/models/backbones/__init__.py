"""Registered backbones; importing this package registers them all."""

from singleshot.models.backbones import alexnet, efficientnet, mobilenet, slim, vgg  # noqa: F401  (registration)
from singleshot.models.backbones.base import Backbone

__all__ = ["Backbone"]
