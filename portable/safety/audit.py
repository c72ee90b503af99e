"""`audit`: what a pickle, joblib or skops file imports and calls, and whether portable's loader admits it.

What runs: a static scan of the opcodes (nothing executed), then — only when every global is allowed — the loader
itself (`safe_load`), so that the verdict is the loader's: it imports the allowlisted (or trusted) modules the
file names, calls the reconstructor table's functions and the `__setstate__` of allowlisted classes on the file's
data, and validates the fitted internals. What never runs: any module or callable off the allowlist, and the model
(no predict/transform).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import PortableError
from .allowlist import judge, trust_tuple
from .container import Container, open_stream, read_bytes, sniff
from .scan import JOBLIB_WRAPPER, ScanError, scan_stream


@dataclass(frozen=True)
class GlobalUse:
    """One global the file imports: how often, how often it is called, and the allowlist's verdict."""

    name: str
    allowed: bool
    reason: str
    imports: int
    calls: int
    trusted: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "allowed": self.allowed, "trusted": self.trusted, "reason": self.reason,
                "imports": self.imports, "calls": self.calls}


@dataclass
class AuditResult:
    """The audit of one file. `safe` is True when it parses and every global it imports is allowed."""

    path: str
    container: str = "unknown"
    protocol: int | None = None
    globals: list[GlobalUse] = field(default_factory=list)
    calls: int = 0
    opcodes: int = 0
    versions: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    refusal: str | None = None  # why portable's loader refuses the file although every name is allowed

    @property
    def refused(self) -> list[str]:
        return [g.name for g in self.globals if not g.allowed]

    @property
    def safe(self) -> bool:
        return self.error is None and not self.refused and self.refusal is None

    @property
    def verdict(self) -> str:
        if self.error is not None:
            return f"UNREADABLE: {self.error}"
        if self.refused:
            flags = " ".join(f"--trust {n}" for n in self.refused)
            return (f"UNSAFE: {len(self.refused)} refused global(s); portable will not load this file unless you "
                    f"trust them ({flags})")
        if self.refusal is not None:
            return f"REFUSED: portable's loader refuses this file: {self.refusal}"
        return "SAFE: every global is on the allowlist" + (" or trusted" if any(g.trusted for g in self.globals)
                                                            else "")

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "safe": self.safe, "verdict": self.verdict, "container": self.container,
                "protocol": self.protocol, "opcodes": self.opcodes, "calls": self.calls,
                "versions": self.versions, "refused": self.refused,
                "globals": [g.to_dict() for g in self.globals], "notes": self.notes, "error": self.error,
                "refusal": self.refusal}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_text(self) -> str:
        head = [f"file:      {self.path}", f"container: {self.container}"]
        if self.protocol is not None:
            head.append(f"protocol:  {self.protocol}")
        elif self.error is None and self.container.startswith("pickle"):
            head.append("protocol:  0 or 1 (the stream has no PROTO opcode)")
        if self.versions:
            head.append("versions:  " + ", ".join(f"{lib} {'/'.join(v)}" for lib, v in self.versions.items()))
        head.append(f"calls:     {self.calls}" + (f" ({self.opcodes} opcodes)" if self.opcodes else ""))
        rows = [("global", "verdict", "imports", "calls", "why")]
        for g in self.globals:
            mark = "trusted" if g.trusted else ("allowed" if g.allowed else "REFUSED")
            rows.append((g.name, mark, str(g.imports), str(g.calls), g.reason))
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        table = ["  ".join(r[i].ljust(widths[i]) for i in range(4)) + "  " + r[4] for r in rows]
        table.insert(1, "  ".join("-" * w for w in widths) + "  " + "-" * 3)
        lines = head + [""] + (table if self.globals else ["(the file imports no globals)"])
        lines += [""] + [f"note: {n}" for n in self.notes] + [f"verdict: {self.verdict}"]
        return "\n".join(ln for ln in lines if ln is not None)

    def __str__(self) -> str:
        return self.to_text()


def audit(path: Path, *, trust: Any = ()) -> AuditResult:
    """List every global a pickle, joblib or skops file imports, judge each, count calls, and say whether
    portable's loader admits the file.

    The listing is a static scan. Resolving a name to judge it imports its module only when that module is inside
    scikit-learn, numpy or scipy.sparse (or trusted); nothing the file defines or names elsewhere is imported.
    When every name is allowed, the file goes through the loader itself (`safe_load`: the reconstructor table's
    checks on every call and state, then the validation of fitted internals), so the audit never says SAFE for a
    file the loader refuses.
    """
    path = Path(path)
    trust = trust_tuple(trust)
    result = AuditResult(str(path))
    try:
        data = read_bytes(path)
        container = sniff(path, data)
    except PortableError as exc:
        result.error = exc.message
        return result
    result.container = container.describe()
    if container.kind == "skops":
        result = _audit_skops(result, path, data, trust)
    else:
        result = _audit_pickle(result, path, data, container, trust)
    if result.error is None and not result.refused:
        from .loader import safe_load

        try:
            safe_load(path, trust=trust)
        except PortableError as exc:
            result.refusal = exc.message
    return result


def _audit_pickle(result: AuditResult, path: Path, data: bytes, container: Container,
                  trust: tuple[str, ...]) -> AuditResult:
    try:
        found = scan_stream(open_stream(path, data, container))
    except ScanError as exc:
        where = f" at byte {exc.pos}" if exc.pos is not None else ""
        result.error = f"{'truncated' if exc.truncated else 'corrupt'} pickle{where}: {exc}"
        return result
    except PortableError as exc:  # a limit reached (a decompression bomb...): the loader's own message
        result.error = exc.message
        return result
    except Exception as exc:  # a damaged compressed stream (zlib.error, lzma.LZMAError, EOFError, ...)
        result.error = f"cannot read the stream: {type(exc).__name__}: {exc}"
        return result
    result.protocol, result.opcodes, result.calls = found.protocol, found.opcodes, found.total_calls
    result.versions = {lib: sorted(v) for lib, v in found.versions.items()}
    if found.arrays_skipped and not container.compression:
        result.container = "pickle written by joblib (arrays stored raw)"
    for key, count in sorted(found.imports.items()):
        if key == JOBLIB_WRAPPER:
            result.globals.append(GlobalUse(".".join(key), True, "joblib's array wrapper, read by joblib's own "
                                            "unpickler (restricted the same way)", count, found.calls[key]))
            continue
        v = judge(key[0], key[1], trust)
        result.globals.append(GlobalUse(v.name, v.allowed, v.reason, count, found.calls[key], v.trusted))
    result.globals.sort(key=lambda g: g.name)
    if found.anonymous_calls:
        result.notes.append(f"{found.anonymous_calls} call(s) of objects built inside the file (not of globals)")
    if found.persistent_ids:
        result.error = "the pickle uses persistent ids (external references), which portable does not load"
    _version_note(result)
    return result


def _audit_skops(result: AuditResult, path: Path, data: bytes, trust: tuple[str, ...]) -> AuditResult:
    from .skops_io import judge_schema, read_schema

    try:
        schema = read_schema(path, data)
    except PortableError as exc:
        result.error = exc.message
        return result
    result.protocol, result.calls = schema.protocol, schema.objects
    if schema.skops_version:
        result.versions["skops"] = [str(schema.skops_version)]
    if schema.sklearn_versions:
        result.versions["scikit-learn"] = sorted(schema.sklearn_versions)
    for full, v in sorted(judge_schema(schema, trust).items()):
        result.globals.append(GlobalUse(v.name, v.allowed, v.reason, schema.counts[full], 0, v.trusted))
    result.notes.append("skops archives name types instead of calls; 'calls' counts the objects it would build")
    _version_note(result)
    return result


def _version_note(result: AuditResult) -> None:
    try:
        import sklearn
    except ImportError:
        return
    for v in result.versions.get("scikit-learn", []):
        if v != sklearn.__version__:
            result.notes.append(f"saved with scikit-learn {v}; this environment has {sklearn.__version__}: "
                                "loading will warn, and predictions may differ")
