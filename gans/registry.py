"""Name -> class (or function) tables for what a recipe can choose by name.

A name with a dot that is not registered is imported as `package.module.Class`, so users plug in
their own networks without editing gans.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

from gans.errors import GansError


class Registry:
    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Any] = {}

    def register(self, name: str) -> Callable[[Any], Any]:
        def add(obj: Any) -> Any:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = obj
            return obj

        return add

    def names(self) -> list[str]:
        _import_builtins()
        return sorted(self._entries)

    def get(self, name: str, where: str = "") -> Any:
        _import_builtins()
        if name in self._entries:
            return self._entries[name]
        prefix = f"{where}: " if where else ""
        if "." in name:
            return _import_dotted(name, prefix, self.kind)
        raise GansError(f"{prefix}unknown {self.kind} {name!r}; known: {', '.join(self.names())}"
                        f" (or a dotted path to your own {self.kind})")


def _import_dotted(path: str, prefix: str, kind: str) -> Any:
    module_name, _, attr = path.rpartition(".")
    if not module_name or not attr or module_name.startswith("."):
        raise GansError(f"{prefix}unknown {kind} {path!r}: a dotted path needs a module and a "
                        "name (package.module.Class); check the spelling")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # ImportError, or whatever the user's module raises on import
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise GansError(f"{prefix}cannot import module {module_name!r} for {kind} {path!r} "
                        f"({exc.__class__.__name__}: {reason[:120]}); check the dotted path "
                        "and that it is on PYTHONPATH") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise GansError(f"{prefix}module {module_name!r} has no {attr!r}; "
                        f"check the dotted path for {kind} {path!r}") from None


GENERATORS = Registry("generator")
DISCRIMINATORS = Registry("discriminator")
OBJECTIVES = Registry("objective")
DATASETS = Registry("dataset")
AUGMENTATIONS = Registry("augmentation")  # differentiable transforms for augment.policy


BUILTIN_PACKAGES = ("gans.models", "gans.objectives")
_builtins_imported = False


def _import_builtins() -> None:
    """Registration happens on import. Every module of the model and objective packages is
    imported, so a new family or objective is one new file there and nothing else; importing
    here, on first lookup, keeps `registry` free of import cycles."""
    global _builtins_imported
    if _builtins_imported:
        return
    import pkgutil

    _builtins_imported = True  # before the imports: registering modules look names up too
    importlib.import_module("gans.data")
    for package_name in BUILTIN_PACKAGES:
        package = importlib.import_module(package_name)
        for module in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"{package_name}.{module.name}")
