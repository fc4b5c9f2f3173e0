"""Name -> factory registries: build any backbone, head, loss term or dataset by name.

Every registry also accepts ``"package.module:attribute"`` so that code outside ``lrfr`` (a chapter,
a test, a user's experiment) can plug in a factory without editing the library.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """A named collection of factories of one kind (e.g. ``"backbone"``)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._factories: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator registering ``factory`` under ``name``; names are unique."""

        def decorator(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._factories:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._factories[name] = factory
            return factory

        return decorator

    def names(self) -> list[str]:
        return sorted(self._factories)

    def get(self, name: str) -> Callable[..., T]:
        """The factory for ``name``, or for an importable ``"module:attribute"`` path."""
        if name in self._factories:
            return self._factories[name]
        if ":" in name:
            return import_object(name, self.kind)
        raise KeyError(
            f"unknown {self.kind} {name!r}; expected one of {', '.join(self.names())} "
            "or an importable 'module:attribute'"
        )

    def build(self, name: str, /, **kwargs: Any) -> T:
        """Call the factory registered as ``name`` with keyword overrides."""
        return self.get(name)(**kwargs)


def import_object(path: str, kind: str = "object") -> Any:
    """The attribute named by ``"package.module:attribute"``; KeyError naming the path if it fails."""
    module_name, _, attribute = path.partition(":")
    try:
        return getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError, ValueError) as error:
        raise KeyError(f"cannot import {kind} {path!r}: {error}") from error
