"""`.skops` archives: every type the archive names is judged by the same allowlist as pickle globals.

skops never unpickles, but it imports and instantiates the types its `schema.json` names when they are
trusted. We list every (module, class) node of the schema, refuse the file when any is off the allowlist, and
pass skops `trusted=` the ones it does not trust by default (`skops.io.get_untrusted_types`) that we allow.
"""
from __future__ import annotations

import io
import json
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError, MissingDependencyError
from ..limits import LimitError, check_size, load_json
from . import guard
from .allowlist import Verdict, judge

#: skops node loaders whose (module, class) names a function or method rather than a type
_CALLABLE_LOADERS = {"FunctionNode", "MethodNode", "OperatorFuncNode", "PartialNode"}


@dataclass
class SkopsSchema:
    """What an archive's schema names: `types` maps each full name to (module, name) and its node count."""

    protocol: int | None
    skops_version: str | None
    types: dict[str, tuple[str, str]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    objects: int = 0
    sklearn_versions: set[str] = field(default_factory=set)


def read_schema(path: Path, data: bytes) -> SkopsSchema:
    """Parse `schema.json` of a skops archive, without importing anything it names."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        # its declared size first: a 500 KB archive can deflate to a schema.json of gigabytes
        check_size(archive.getinfo("schema.json").file_size, "max_document_bytes",
                   "the archive's schema.json size in bytes", path=path)
        raw = archive.read("schema.json")
        # within portable's limits: size, then nesting depth (the walk below and skops' own recursive loaders
        # would otherwise meet a RecursionError), then the node count
        schema = load_json(raw, path=path, what="the archive's schema.json")
    except LimitError:
        raise
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, RuntimeError) as exc:
        raise InputError(f"not a readable skops archive: {type(exc).__name__}: {exc}", path=path) from None
    if not isinstance(schema, dict):
        raise InputError("not a readable skops archive: schema.json is not an object", path=path)
    out = SkopsSchema(schema.get("protocol"), schema.get("_skops_version"))
    stack: list[Any] = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        module, cls = node.get("__module__"), node.get("__class__")
        if isinstance(module, str) and isinstance(cls, str):
            name = cls
            content = node.get("content")
            if node.get("__loader__") == "MethodNode" and isinstance(content, dict):
                name = f"{cls}.{content.get('func')}"
            full = f"{module}.{name}"
            out.types[full] = (module, name)
            out.counts[full] = out.counts.get(full, 0) + 1
            if node.get("__loader__") == "ObjectNode":
                out.objects += 1
        content = node.get("content")
        if isinstance(content, dict):
            version = content.get("_sklearn_version")
            if isinstance(version, dict) and isinstance(version.get("content"), str):
                try:
                    out.sklearn_versions.add(str(json.loads(version["content"])))
                except ValueError:
                    pass
        stack.extend(v for k, v in node.items() if k != "__id__")
    return out


def judge_schema(schema: SkopsSchema, trust: tuple[str, ...]) -> dict[str, Verdict]:
    return {full: judge(module, name, trust) for full, (module, name) in schema.types.items()}


def _check_members(path: Path, data: bytes) -> None:
    """The archive's declared member sizes within portable's limits before skops decompresses anything (a 1 MB
    archive can hold a gigabyte of deflated zeros)."""
    from ..limits import check_zip_members

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            members = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise InputError(f"corrupt skops archive: {exc}", path=path) from None
    check_zip_members(members, path=path, compressed_size=len(data))


def load_skops(path: Path, data: bytes, trust: tuple[str, ...]) -> tuple[Any, list[str]]:
    """Load a skops archive when every type it names is allowed (or trusted)."""
    try:
        import skops.io as sio
    except ImportError:
        raise MissingDependencyError("reading .skops files needs skops: pip install skops") from None
    from .loader import unsafe_error, version_notes

    _check_members(path, data)
    schema = read_schema(path, data)
    verdicts = judge_schema(schema, trust)
    refused = [v for v in verdicts.values() if not v.allowed]
    if refused:
        raise unsafe_error(path, refused)
    try:
        wanted = sio.get_untrusted_types(data=data)
    except Exception as exc:
        raise InputError(f"corrupt skops archive: {type(exc).__name__}: {exc}", path=path) from None
    unknown = [t for t in wanted if t not in verdicts]
    if unknown:  # skops sees a type our schema walk did not: refuse rather than guess
        raise unsafe_error(path, [Verdict(t, False, "named by the archive in a way portable cannot judge")
                                  for t in unknown])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with guard.guarded():
                obj = sio.loads(data, trusted=list(wanted))
            blocked = guard.tripped()
        except guard.GuardTripped as exc:
            blocked = exc.event
        except Exception as exc:
            raise InputError(f"the skops archive could not be rebuilt: {type(exc).__name__}: {exc}",
                             path=path) from None
    from .loader import hostile_error
    from .states import BadState, HostileState, check_graph

    try:
        check_graph(obj, trust)
    except HostileState as exc:  # a capability built from allowed types (a hostile Bunch, a callable as a value)
        raise hostile_error(path, exc, "archive") from None
    except BadState as exc:
        raise InputError(f"corrupt skops archive: it holds {exc}", path=path) from None
    from .internals import validate_model

    validate_model(obj, path)
    if blocked:
        from ..errors import UnsafePickleError

        raise UnsafePickleError(f"loading the archive attempted a side effect ('{blocked}') and was stopped",
                                path=path, refused=[blocked])
    return obj, version_notes(caught)
