"""Registries that map short names to lazily imported objects ("module:attr").

Third-party packages add entries through the entry point group given to the registry.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any

from unified.errors import UnknownNameError


class Registry:
    """Short name -> "module:attribute", resolved on first use."""

    def __init__(self, what: str, builtins: dict[str, str], entry_point_group: str) -> None:
        self.what = what
        self._targets = dict(builtins)
        self._group = entry_point_group
        self._plugins_loaded = False
        self._resolved: dict[str, Any] = {}

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        for ep in entry_points(group=self._group):
            self._targets.setdefault(ep.name, ep.value)

    def names(self) -> list[str]:
        self._load_plugins()
        return sorted(self._targets)

    def register(self, name: str, target: str) -> None:
        self._targets[name] = target
        self._resolved.pop(name, None)

    def unregister(self, name: str) -> None:
        """Forget `name`, however it was added (tests undo their `register` with it)."""
        self._load_plugins()
        self._targets.pop(name, None)
        self._resolved.pop(name, None)

    def get(self, name: str) -> Any:
        if name in self._resolved:
            return self._resolved[name]
        self._load_plugins()
        target = self._targets.get(name)
        if target is None:
            known = ", ".join(self.names())
            raise UnknownNameError(f"Unknown {self.what} '{name}'. Known: {known}")
        module_name, _, attr = target.partition(":")
        obj: Any = importlib.import_module(module_name)
        for part in attr.split(".") if attr else []:
            obj = getattr(obj, part)
        self._resolved[name] = obj
        return obj
