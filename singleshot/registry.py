"""Registries of named entry points: backbones, models, dataset formats, evaluation protocols.

Only named entry points are registered (as timm's ``register_model``), never every part: a recipe in
:mod:`singleshot.models.zoo` reads as plain code that builds its parts and passes them to constructors.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Generic, TypeVar

from singleshot.errors import SingleshotError

T = TypeVar("T", bound=Callable)


class UnknownNameError(SingleshotError, KeyError):
    """A name that is not registered; the message lists the closest and the known names."""

    def __str__(self) -> str:  # KeyError quotes its message; this one is a sentence
        return str(self.args[0]) if self.args else ""

class Registry(Generic[T]):
    """A name -> factory mapping with a decorator to fill it and near-miss suggestions on lookup."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str | None = None) -> Callable[[T], T]:
        """Decorator registering a factory under ``name`` (default: the function's name)."""

        def decorator(factory: T) -> T:
            key = name or factory.__name__
            if key in self._entries:
                raise ValueError(f"{self.kind} {key!r} is already registered")
            self._entries[key] = factory
            return factory

        return decorator

    def get(self, name: str) -> T:
        """The factory registered as ``name``; a KeyError naming the closest names otherwise."""
        try:
            return self._entries[name]
        except KeyError:
            close = difflib.get_close_matches(name, self._entries, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise UnknownNameError(f"unknown {self.kind} {name!r}{hint} (known: {', '.join(self.names())})") from None

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries


BACKBONES: Registry = Registry("backbone")
MODELS: Registry = Registry("model")
DATASET_FORMATS: Registry = Registry("dataset format")
EVAL_PROTOCOLS: Registry = Registry("evaluation protocol")
