"""FunctionTransformer with numpy functions, and the numpy functions of TransformedTargetRegressor.

A FunctionTransformer runs arbitrary Python; portable converts it when its `func` is one of numpy's element-wise
functions (`np.log1p`, `np.sqrt`, ..., by identity, not by name), `np.clip` with `kw_args` bounds, `None`
(identity), or a function registered with `register_function`. Anything else is refused with a message that names
the function and says how to register it.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ... import onnx_builder
from ...errors import UnsupportedModelError
from .emit import Emitter
from .registry import sklearn_converter

# user-registered element-wise functions: func -> emit(ops, x) -> output
FUNCTIONS: dict[Any, Callable[[onnx_builder.Ops, Any], Any]] = {}


def register_function(func: Callable[..., Any], emit: Callable[[onnx_builder.Ops, Any], Any]) -> None:
    """Teach portable an element-wise function: `emit(ops, x)` writes its ONNX nodes with
    `ops.node(op, *inputs, **attrs)` and `ops.const(value)` (see `portable.onnx_builder.Ops`)."""
    FUNCTIONS[func] = emit


def _numpy_name(func: Any) -> str | None:
    """The numpy (or scipy.special) name of `func` when `func` *is* that function."""
    name = getattr(func, "__name__", None)
    if name is None:
        return None
    if getattr(np, name, None) is func and name in onnx_builder.UNARY:
        return name
    import sys

    special = sys.modules.get("scipy.special")
    if special is not None and getattr(special, name, None) is func and name in ("expit", "erf"):
        return name
    return None


def describe(func: Any) -> str:
    mod = getattr(func, "__module__", None) or ""
    name = getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or repr(func)
    return f"{mod}.{name}" if mod else name


def apply(em: Emitter, x: str, func: Any, kw_args: dict[str, Any] | None, *, owner: str) -> str:
    """`func(x, **kw_args)` as ONNX nodes."""
    kw = dict(kw_args or {})
    if func is None:
        return x
    if func in FUNCTIONS:
        return FUNCTIONS[func](em.ops, x)
    if func is np.clip:
        lo = kw.pop("a_min", kw.pop("min", None))
        hi = kw.pop("a_max", kw.pop("max", None))
        if not kw:
            out = x
            if lo is not None:
                out = em.node("Max", [out, em.const(np.asarray(lo, dtype=np.float64))], "lo")
            if hi is not None:
                out = em.node("Min", [out, em.const(np.asarray(hi, dtype=np.float64))], "hi")
            return out
    name = _numpy_name(func)
    if name is not None and not kw:
        return onnx_builder.unary(em.ops, name, x)
    what = describe(func) + (f" with kw_args={kw_args}" if kw_args else "")
    raise UnsupportedModelError(
        f"{owner} uses {what}, arbitrary Python that portable cannot translate. It converts numpy's element-wise "
        f"functions ({', '.join(sorted(onnx_builder.UNARY))}), np.clip with kw_args bounds, and functions "
        "registered with portable.converters.sklearn.functions.register_function(func, emit), where "
        "emit(ops, x) writes the ONNX nodes with ops.node(op, *inputs) and ops.const(value)")


@sklearn_converter("sklearn.preprocessing.FunctionTransformer", kind="transformer", replaces=True)
def function_transformer(em: Emitter, est: Any) -> list[Any]:
    return [apply(em, em.input(), est.func, est.kw_args, owner="FunctionTransformer")]
