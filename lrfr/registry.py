"""Name -> factory registries: build any backbone, head, loss term or dataset by name.

A registry also accepts ``"package.module:attribute"`` so that code outside ``lrfr`` (a chapter, a test,
a user's experiment) can plug in a factory without editing the library, but only for modules the user
allowed: importing a module named in a config runs its code (``"os:system"`` would run a shell command),
so a config file alone can never do it. Allow module prefixes with any of

* ``lrfr.registry.allow_imports("my_lab")`` in Python (a notebook or script),
* ``lrfr train --allow-import my_lab`` on the command line,
* the environment variable ``LRFR_ALLOW_IMPORTS=my_lab,other.pkg`` (comma-separated; inherited by
  ``torchrun`` workers and papermill kernels).

A prefix allows that module and its sub-modules (``my_lab`` allows ``my_lab.data:make``, not ``my_lab2``).
"""

from __future__ import annotations

import importlib
import os
from typing import Any, Callable, Generic, TypeVar

T = TypeVar("T")

ALLOW_IMPORTS_ENV = "LRFR_ALLOW_IMPORTS"
_allowed: set[str] = set()  # prefixes allowed in this process, besides those in the environment


class ImportNotAllowedError(KeyError):
    """A config named a ``"module:attribute"`` path whose module the user did not allow."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def allow_imports(*prefixes: str) -> None:
    """Allow registries to import ``"module:attribute"`` paths under these module prefixes (this process)."""
    for prefix in prefixes:
        if not prefix or not all(part.isidentifier() for part in prefix.split(".")):
            raise ValueError(f"module prefix {prefix!r} is not a dotted module name such as 'my_lab.factories'")
        _allowed.add(prefix)


def allowed_imports() -> frozenset[str]:
    """The module prefixes currently allowed (:func:`allow_imports` and ``LRFR_ALLOW_IMPORTS``)."""
    from_env = {p.strip() for p in os.environ.get(ALLOW_IMPORTS_ENV, "").split(",") if p.strip()}
    return frozenset(_allowed | from_env)


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
        """The factory for ``name``, or for an allowed ``"module:attribute"`` path (see the module docstring)."""
        if name in self._factories:
            return self._factories[name]
        if ":" in name:
            return import_object(name, self.kind)
        raise KeyError(
            f"unknown {self.kind} {name!r}; expected one of {', '.join(self.names())} "
            "or an allowed 'module:attribute' (see lrfr.registry)"
        )

    def build(self, name: str, /, **kwargs: Any) -> T:
        """Call the factory registered as ``name`` with keyword overrides."""
        return self.get(name)(**kwargs)


def import_object(path: str, kind: str = "object") -> Any:
    """The attribute named by ``"package.module:attribute"`` when its module is allowed (see the module
    docstring); :class:`ImportNotAllowedError` otherwise, KeyError naming the path if the import fails."""
    module_name, _, attribute = path.partition(":")
    allowed = allowed_imports()
    if not any(module_name == prefix or module_name.startswith(prefix + ".") for prefix in allowed):
        raise ImportNotAllowedError(
            f"{kind} {path!r} is not registered, and importing module {module_name!r} is not allowed: importing a "
            f"module named in a config runs its code. If you trust it, allow it with {ALLOW_IMPORTS_ENV}="
            f"{module_name.split('.')[0]}, 'lrfr train --allow-import {module_name.split('.')[0]}' or "
            f"lrfr.registry.allow_imports({module_name.split('.')[0]!r}) (allowed now: {sorted(allowed) or 'none'})"
        )
    try:
        return getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError, ValueError) as error:
        raise KeyError(f"cannot import {kind} {path!r}: {error}") from error
