"""Name → component. A YAML `kind:` / `cell:` / `task:` value picks the class registered under it."""

from __future__ import annotations

from textrnn.errors import UserError

_REGISTRY: dict[str, dict[str, type]] = {}


def register(group: str, name: str):
    def deco(cls):
        _REGISTRY.setdefault(group, {})[name] = cls
        return cls

    return deco


def get(group: str, name: str) -> type:
    try:
        return _REGISTRY[group][name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY.get(group, {})))
        raise UserError(f"unknown {group} '{name}' (known: {known})") from None
