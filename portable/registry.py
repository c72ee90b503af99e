"""The registry: formats (nodes) and converters (edges), route finding, and entry-point plugins.

Built-in formats and converters are named by module path and imported on first use of the registry, never by
`import portable`; each module registers itself with the `register_format` / `converter` decorators next to its
code. Third-party packages add modules (or `register(registry)` callables) through the entry-point group
`portable.converters`. A broken plugin is a warning, not a crash.
"""
from __future__ import annotations

import heapq
import importlib
import importlib.util
import threading
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from .errors import MissingDependencyError, NoConverterError, UnknownFormatError, InputError

ENTRY_POINT_GROUP = "portable.converters"

BUILTIN_MODULES: tuple[str, ...] = (
    "portable.formats.sklearn",
    "portable.formats.pickle",
    "portable.formats.pfa",
    "portable.formats.onnx",
    "portable.formats.nnef",
    "portable.converters.pickle_sklearn",
    "portable.converters.sklearn",
    "portable.converters.pfa_onnx",
    "portable.converters.onnx_nnef",
)


@dataclass(frozen=True)
class LoadOptions:
    """Options that loading a model may use.

    Attributes:
        trust: extra fully qualified names or package prefixes a pickle may import.
        runtime: for ONNX, `onnxruntime` (default) or `reference` (`onnx.reference.ReferenceEvaluator`).
    """

    trust: tuple[str, ...] = ()
    runtime: str = "onnxruntime"


@dataclass(frozen=True)
class ConvertOptions:
    """Options every converter receives.

    Attributes:
        dtype: `float32` or `float64` (`auto` is resolved before any converter runs).
        trust: as in LoadOptions, for converters that load pickles.
        target_opset: the main ONNX opset to target, or None for the converter's choice.
        standard_ops: lower `ai.onnx.ml` operators to standard ONNX operators where supported.
        data: sample input (for converters that can use it to learn input types); never modified.
        extra: typed per-converter options from plugins, keyed by converter name.
    """

    dtype: str = "float32"
    trust: tuple[str, ...] = ()
    target_opset: int | None = None
    standard_ops: bool = False
    data: Any = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FormatInfo:
    """A registered format. `impl` provides `sniff(source) -> bool`, `load(source, options) -> Model`."""

    name: str
    description: str
    extensions: tuple[str, ...]
    impl: Any
    module: str
    is_target: bool = False
    priority: int = 50  # lower sniffs first

    def sniff(self, source: Any) -> bool:
        return bool(self.impl.sniff(source))

    def load(self, source: Any, options: LoadOptions) -> Any:
        return self.impl.load(source, options)


@dataclass(frozen=True)
class ConverterInfo:
    """One edge of the graph: `func(model, options) -> Model` turns a `source` model into a `target` one."""

    source: str
    target: str
    name: str
    func: Callable[..., Any]
    module: str
    requires: tuple[str, ...] = ()
    cost: float = 1.0
    description: str = ""

    @property
    def edge(self) -> str:
        return f"{self.source} -> {self.target}"

    def missing(self) -> list[str]:
        """Python modules this converter needs that are not installed."""
        return [m for m in self.requires if importlib.util.find_spec(m) is None]


class Registry:
    """Formats and converters. Use the module-level `REGISTRY`; a fresh one is handy in tests."""

    def __init__(self, builtin_modules: Iterable[str] = BUILTIN_MODULES, *, entry_points: bool = True) -> None:
        self._builtin = tuple(builtin_modules)
        self._use_entry_points = entry_points
        self._formats: dict[str, FormatInfo] = {}
        self._converters: dict[tuple[str, str, str], ConverterInfo] = {}
        self._loaded = False
        self._lock = threading.RLock()
        self.plugin_errors: list[str] = []

    # -- registration ---------------------------------------------------------------------------------------
    def add_format(self, info: FormatInfo) -> None:
        self._formats[info.name] = info

    def add_converter(self, info: ConverterInfo) -> None:
        self._converters[(info.source, info.target, info.name)] = info

    # -- loading ---------------------------------------------------------------------------------------------
    def _ensure_loaded(self) -> None:
        if self._loaded:
            return
        with self._lock:
            if self._loaded:
                return
            _ACTIVE.append(self)
            try:
                for mod in self._builtin:
                    importlib.import_module(mod)
                    # a module imported before (by another registry) must still register here
                    reg = getattr(importlib.import_module(mod), "__portable_register__", None)
                    if reg is not None:
                        reg(self)
                if self._use_entry_points:
                    self._load_entry_points()
            finally:
                _ACTIVE.remove(self)
            self._loaded = True

    def _load_entry_points(self) -> None:
        from importlib.metadata import entry_points

        for ep in entry_points(group=ENTRY_POINT_GROUP):
            try:
                obj = ep.load()
                reg = getattr(obj, "__portable_register__", None)
                if reg is not None:
                    reg(self)
                elif callable(obj) and not isinstance(obj, type):
                    obj(self)
            except Exception as exc:  # a broken plugin must not break portable
                msg = f"portable: converter plugin '{ep.name}' ({ep.value}) failed to load: {exc}"
                self.plugin_errors.append(msg)
                warnings.warn(msg, RuntimeWarning, stacklevel=2)

    def refresh(self) -> None:
        """Forget everything and load built-ins and plugins again (after installing a plugin)."""
        with self._lock:
            self._formats.clear()
            self._converters.clear()
            self.plugin_errors.clear()
            self._loaded = False
        self._ensure_loaded()

    # -- queries ---------------------------------------------------------------------------------------------
    @property
    def formats(self) -> Mapping[str, FormatInfo]:
        self._ensure_loaded()
        return MappingProxyType(self._formats)

    @property
    def converters(self) -> tuple[ConverterInfo, ...]:
        self._ensure_loaded()
        return tuple(self._converters.values())

    def format(self, name: str) -> FormatInfo:
        fmts = self.formats
        if name not in fmts:
            raise UnknownFormatError(f"unknown format '{name}'; registered formats: {', '.join(sorted(fmts))}")
        return fmts[name]

    def sniff(self, source: Any) -> FormatInfo:
        """The format that recognises `source`.

        Raises:
            InputError: `source` is a path that does not exist.
            UnknownFormatError: no format recognises it; the message lists the formats and their extensions.
        """
        if isinstance(source, (str, Path)):
            from ._io import check_name_lengths, why_missing

            check_name_lengths(Path(source))
            if not Path(source).exists():
                raise InputError(why_missing(source), path=source)
            from .limits import check_regular

            check_regular(source, folders=True)  # a pipe or a device (/dev/zero named x.json) is never read
        for info in sorted(self.formats.values(), key=lambda f: f.priority):
            if info.sniff(source):
                return info
        known = "; ".join(f"{f.name} ({' '.join(f.extensions) or 'in memory'})"
                          for f in sorted(self.formats.values(), key=lambda f: f.name))
        what = source if isinstance(source, (str, Path)) else type(source).__name__
        raise UnknownFormatError(f"not a format portable recognises: {what}. Known formats: {known}",
                                 path=source if isinstance(source, (str, Path)) else None)

    def route(self, source: str, target: str) -> list[ConverterInfo]:
        """The cheapest chain of installed converters from `source` to `target` (empty when equal).

        Raises:
            NoConverterError: no chain exists; lists every edge and which libraries would enable more.
        """
        self.format(source)
        self.format(target)
        if source == target:
            return []
        usable: dict[str, list[ConverterInfo]] = {}
        missing_hint: dict[str, list[str]] = {}
        for c in self.converters:
            miss = c.missing()
            if miss:
                missing_hint[c.edge] = miss
                continue
            usable.setdefault(c.source, []).append(c)
        best: dict[str, float] = {source: 0.0}
        heap: list[tuple[float, int, str, list[ConverterInfo]]] = [(0.0, 0, source, [])]
        tie = 1
        while heap:
            cost, _, node, path = heapq.heappop(heap)
            if node == target:
                return path
            if cost > best.get(node, float("inf")):
                continue
            for c in usable.get(node, []):
                nc = cost + c.cost
                if nc < best.get(c.target, float("inf")):
                    best[c.target] = nc
                    heapq.heappush(heap, (nc, tie, c.target, path + [c]))
                    tie += 1
        hint = ""
        if missing_hint:
            hint = "Not usable until installed: " + "; ".join(
                f"{e} needs {', '.join(m)}" for e, m in sorted(missing_hint.items())) + "."
        raise NoConverterError(source, target, (c.edge for c in self.converters), hint)


# Registries currently importing their built-ins; decorators register into these (or REGISTRY by default).
_ACTIVE: list[Registry] = []
REGISTRY = Registry()


def _targets() -> list[Registry]:
    return [_ACTIVE[-1]] if _ACTIVE else [REGISTRY]


def _remember(module: str, fn: Callable[[Registry], None]) -> None:
    """Keep the registration so that another Registry importing the same module can replay it."""
    import sys

    mod = sys.modules.get(module)
    if mod is None:
        return
    prev = getattr(mod, "__portable_register__", None)

    def replay(reg: Registry) -> None:
        if prev is not None:
            prev(reg)
        fn(reg)

    mod.__portable_register__ = replay  # type: ignore[attr-defined]


def register_format(name: str, *, extensions: Iterable[str] = (), description: str = "",
                    target: bool = False, priority: int = 50) -> Callable[[Any], Any]:
    """Class decorator: register a format implementation (`sniff`, `load` as static or class methods)."""

    def deco(impl: Any) -> Any:
        info = FormatInfo(name=name, description=description or (impl.__doc__ or "").strip().split("\n")[0],
                          extensions=tuple(extensions), impl=impl, module=impl.__module__, is_target=target,
                          priority=priority)
        _remember(impl.__module__, lambda reg: reg.add_format(info))
        for reg in _targets():
            reg.add_format(info)
        return impl

    return deco


def converter(source: str, target: str, *, name: str | None = None, requires: Iterable[str] = (),
              cost: float = 1.0, description: str = "") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Function decorator: register `func(model, options) -> Model` as the edge `source -> target`.

    Args:
        requires: importable module names the converter needs (checked before routing, imported by the code).
        cost: route weight; the cheapest route wins, so a more specific converter can take a lower cost.
    """

    def deco(func: Callable[..., Any]) -> Callable[..., Any]:
        info = ConverterInfo(source=source, target=target, name=name or func.__name__, func=func,
                             module=func.__module__, requires=tuple(requires), cost=cost,
                             description=description or (func.__doc__ or "").strip().split("\n")[0])
        _remember(func.__module__, lambda reg: reg.add_converter(info))
        for reg in _targets():
            reg.add_converter(info)
        return func

    return deco


def require(module: str, *, extra: str = "", purpose: str = "") -> Any:
    """Import an optional heavy module, or raise MissingDependencyError with an install hint."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if "failed to map segment" in str(exc):  # installed, but the address space (RLIMIT_AS) is used up
            raise MemoryError(f"loading {module}: {exc}") from None
        pkg = module.split(".")[0]
        hint = f'pip install "portable-models[{extra}]"' if extra else f"pip install {pkg}"
        raise MissingDependencyError(
            f"{purpose or 'this step'} needs the Python package '{pkg}', which is not installed ({exc}). "
            f"Install it with: {hint}") from exc
