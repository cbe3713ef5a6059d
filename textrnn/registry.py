"""Name → component. A YAML `kind:` / `cell:` / `task:` value picks the class registered under it.

A name is registered once per group: a second class under a taken name is refused (two modules
claiming `task: lm` is a bug, never an override).
"""

from __future__ import annotations

from typing import Callable, TypeVar

from textrnn.errors import UserError

_REGISTRY: dict[str, dict[str, type]] = {}

C = TypeVar("C", bound=type)


def register(group: str, name: str) -> Callable[[C], C]:
    def deco(cls: C) -> C:
        known = _REGISTRY.setdefault(group, {})
        if name in known and known[name] is not cls:
            old = known[name]
            raise ValueError(
                f"{group} '{name}' is registered twice: {old.__module__}.{old.__qualname__} "
                f"and {cls.__module__}.{cls.__qualname__}"
            )
        known[name] = cls
        return cls

    return deco


def get(group: str, name: str) -> type:
    try:
        return _REGISTRY[group][name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY.get(group, {})))
        raise UserError(f"unknown {group} '{name}' (known: {known})") from None


def names(group: str) -> list[str]:
    """The names registered in a group, sorted."""
    return sorted(_REGISTRY.get(group, {}))
