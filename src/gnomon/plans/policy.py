"""The Policy interface, the registry of policies, and config validation.

A policy turns a window [t0, t1] and a validated config into ordered blocks and a command
script. Each policy lives in one module of `gnomon.plans.policies` and registers itself with
`@register`; that module is all it takes to add one.
"""

from __future__ import annotations

import copy
import importlib
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ValidationError

from gnomon.plans.sky import Site


class PolicyError(ValueError):
    """Bad input to a policy (unknown policy, bad config, bad window): the caller's fault."""


@dataclass(frozen=True)
class Block:
    """One scheduled stretch: a scan of `throw` degrees in az from `az` at elevation `alt`.

    Blocks without pointing (az/alt None) are just time (e.g. the dummy policy's sleeps)."""

    name: str
    kind: str  # "survey", "calibration" or "wait"
    t0: float
    t1: float
    az: float | None = None
    alt: float | None = None
    throw: float = 0.0

    @property
    def duration(self) -> float:
        return self.t1 - self.t0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "t0": self.t0,
            "t1": self.t1,
            "az": self.az,
            "alt": self.alt,
            "throw": self.throw,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Block:
        return cls(
            name=d["name"],
            kind=d["kind"],
            t0=float(d["t0"]),
            t1=float(d["t1"]),
            az=d.get("az"),
            alt=d.get("alt"),
            throw=float(d.get("throw") or 0.0),
        )


@dataclass(frozen=True)
class Constraints:
    """What the verifier holds a plan to."""

    site: Site | None = None  # None: blocks carry no pointing, only time is checked
    min_angle_az: float = 0.0
    min_angle_alt: float = 0.0
    alt_range: tuple[float, float] = (-90.0, 90.0)
    time_step: float = 10.0


@dataclass(frozen=True)
class Draft:
    """What a policy makes of a window: its blocks, their command script, and the constraints
    the verifier then holds them to."""

    blocks: list[Block]
    commands: str
    constraints: Constraints


@dataclass(frozen=True)
class Context:
    """What a policy may learn from its caller: where master schedules may be read from
    (None: anywhere) and the generation time stamp."""

    schedule_dirs: list[Path] | None = None
    now: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Policy(ABC):
    """One way of filling a window. Subclasses set `name` and `Config` (a pydantic model with
    extra="forbid" whose defaults are the policy's defaults)."""

    name: ClassVar[str]
    Config: ClassVar[type[BaseModel]]
    order: ClassVar[int] = 100  # place in the list of supported policies

    def defaults(self) -> dict[str, Any]:
        return self.Config().model_dump(by_alias=True)

    def config(self, overrides: dict[str, Any] | None) -> BaseModel:
        """Defaults + overrides, validated. A fresh object every call: nothing is shared."""
        if overrides is not None and not isinstance(overrides, dict):
            raise PolicyError("Invalid config, needs to be a JSON object")
        merged = merge(self.defaults(), copy.deepcopy(overrides or {}))
        try:
            return self.Config.model_validate(merged)
        except ValidationError as exc:
            raise PolicyError(config_message(self.name, exc)) from exc

    def known(self, overrides: dict[str, Any] | None) -> tuple[dict[str, Any] | None, list[str]]:
        """`overrides` without the keys the policy does not know, and those keys as dotted
        paths: for callers that ignore unknown keys, as the original schedule API did."""
        if not isinstance(overrides, dict):
            return overrides, []
        try:
            self.Config.model_validate(merge(self.defaults(), copy.deepcopy(overrides)))
            return overrides, []
        except ValidationError as exc:
            extra = [e["loc"] for e in exc.errors() if e["type"] == "extra_forbidden"]
        kept = copy.deepcopy(overrides)
        dropped = [".".join(str(p) for p in loc) for loc in extra if _drop(kept, loc)]
        return kept, sorted(dropped)

    @abstractmethod
    def generate(self, t0: float, t1: float, config: Any, ctx: Context) -> Draft:
        """Blocks (ordered by start, non-overlapping, about [t0, t1]) and the command script;
        the verifier reports what strays outside the constraints."""


def merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """JSON merge patch (RFC 7386): objects merge key by key, null removes, the rest
    replaces. Returns a new dict."""
    out = dict(base)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _drop(doc: Any, loc: tuple[int | str, ...]) -> bool:
    """Remove the value at `loc` (keys and list indices) from `doc`; False if none is there."""
    for part in loc[:-1]:
        listed = isinstance(doc, list) and isinstance(part, int) and 0 <= part < len(doc)
        if not (listed or (isinstance(doc, dict) and part in doc)):
            return False
        doc = doc[part]
    if isinstance(doc, dict) and loc and loc[-1] in doc:
        del doc[loc[-1]]
        return True
    return False


def config_message(policy: str, exc: ValidationError) -> str:
    unknown, bad = [], []
    for e in exc.errors():
        where = ".".join(str(p) for p in e["loc"])
        if e["type"] == "extra_forbidden":
            unknown.append(where)
        else:
            bad.append(f"{where}: {e['msg']}")
    if unknown:
        names = ", ".join(repr(u) for u in unknown)
        return f"Invalid config for policy '{policy}': unknown key(s) {names}"
    return f"Invalid config for policy '{policy}': " + "; ".join(bad)


_REGISTRY: dict[str, Policy] = {}
_LOADED = False


def register(cls: type[Policy]) -> type[Policy]:
    _REGISTRY[cls.name] = cls()
    return cls


def _load() -> None:
    global _LOADED
    if not _LOADED:
        from gnomon.plans import policies

        for folder in policies.__path__:
            for entry in sorted(os.listdir(folder)):
                if entry.endswith(".py") and not entry.startswith("_"):
                    importlib.import_module(f"{policies.__name__}.{entry[:-3]}")
        _LOADED = True


def names() -> list[str]:
    _load()
    return sorted(_REGISTRY, key=lambda n: (_REGISTRY[n].order, n))


def get(name: str) -> Policy:
    _load()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise PolicyError(f"Invalid policy. Supported policies are: {names()}") from None
