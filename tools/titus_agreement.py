"""Agreement of portable's PFA engine with the assertions of Titus's own library unit tests.

    python tools/titus_agreement.py /path/to/hadrian/titus/test/lib

Titus (hadrian, Apache-2.0) tests each library function with inline YAML documents and `assertEqual(engine.action(x),
y)`-style assertions. This script runs those test files unchanged against a stand-in `titus` package whose
`PFAEngine.fromYaml` builds portable's row-by-row engine, records every assertion (without stopping at the first
failure) and prints, per file: documents portable refuses, assertions checked, and how many agree. Nothing of Titus
is copied into portable; the test files are read from the given folder.
"""
from __future__ import annotations

import json
import math
import re
import sys
import tempfile
import types
import unittest
from pathlib import Path
from typing import Any

RESULTS = {"agree": 0, "disagree": 0, "refused": 0, "errors": 0}
FAILS: list[str] = []


class PFAException(Exception):
    pass


class PFARuntimeException(PFAException):
    def __init__(self, message: str = "", code: Any = None, *a: Any) -> None:
        super().__init__(message)
        self.code = code


class PFAUserException(PFARuntimeException):
    pass


class PFASemanticException(PFAException):
    pass


class PFASyntaxException(PFAException):
    pass


class PFAInitializationException(PFAException):
    pass


class PFATimeoutException(PFAException):
    pass


def _to_engine(v: Any, t: Any) -> Any:
    from portable.formats.pfa import types as T

    if isinstance(t, T.Prim) and t.name == "bytes" and isinstance(v, str):
        return v.encode("utf-8")
    if isinstance(t, T.Fixed) and isinstance(v, str):
        return v.encode("latin-1")
    if isinstance(t, T.Prim) and t.name in ("double", "float") and isinstance(v, int) and not isinstance(v, bool):
        return float(v)
    if isinstance(t, T.Array) and isinstance(v, list):
        return [_to_engine(x, t.items) for x in v]
    if isinstance(t, T.Map) and isinstance(v, dict):
        return {k: _to_engine(x, t.values) for k, x in v.items()}
    if isinstance(t, T.Record) and isinstance(v, dict):
        return {k: _to_engine(v.get(k), ft) for k, ft in t.fields.items()}
    if isinstance(t, T.Union):
        if isinstance(v, dict) and len(v) == 1:
            (tag, inner), = v.items()
            for b in t.types:
                if getattr(b, "name", None) == tag.rsplit(".", 1)[-1]:
                    return _to_engine(inner, b)
        from portable.formats.pfa.rows import value_fits

        for b in t.types:
            if value_fits(_to_engine(v, b), b):
                return _to_engine(v, b)
    return v


def _from_engine(v: Any, t: Any) -> Any:
    """Titus's output form: a union value tagged with its branch (`{"boolean": false}`), null as None."""
    from portable.formats.pfa import types as T
    from portable.formats.pfa.rows import value_fits

    if isinstance(t, T.Union):
        if v is None:
            return None
        for b in t.types:
            if value_fits(v, b):
                name = b.name if not isinstance(b, (T.Array, T.Map)) else b.name
                return {name: _from_engine(v, b)}
        return v
    if isinstance(t, T.Array) and isinstance(v, list):
        return [_from_engine(x, t.items) for x in v]
    if isinstance(t, T.Map) and isinstance(v, dict):
        return {k: _from_engine(x, t.values) for k, x in v.items()}
    if isinstance(t, T.Record) and isinstance(v, dict):
        return {k: _from_engine(v[k], ft) for k, ft in t.fields.items() if k in v}
    return v


class Engine:
    def __init__(self, doc: dict) -> None:
        from portable.formats.pfa.reader import parse
        from portable.formats.pfa.rows import RowEngine

        self.doc = parse(doc)
        self.rows = RowEngine(self.doc)
        self.emit = None
        self.log = None

    def begin(self) -> None:
        self._guard(self.rows.run_begin)

    def end(self) -> None:
        self._guard(self.rows.run_end)

    def _guard(self, fn: Any, *a: Any) -> Any:
        from portable.errors import PFARuntimeError
        from portable.formats.pfa.rows import PFAErr, UserErr

        try:
            return fn(*a)
        except UserErr as exc:
            raise PFAUserException(exc.message, exc.code) from None
        except PFAErr as exc:
            raise PFARuntimeException(exc.message, exc.code) from None
        except PFARuntimeError as exc:
            raise PFARuntimeException(str(exc), exc.code) from None

    def action(self, x: Any) -> Any:
        self.rows.run_begin()
        out = self._guard(self.rows.action_one, _to_engine(x, self.doc.input))
        if self.rows.method == "emit":
            for v in out:
                if callable(self.emit):
                    self.emit(_from_engine(v, self.doc.output))
            return None
        return _from_engine(out, self.doc.output)


def from_yaml(text: str, *a: Any, **k: Any) -> list[Engine]:
    import yaml

    return from_json(yaml.safe_load(text))


def from_json(doc: Any, *a: Any, **k: Any) -> list[Engine]:
    from portable.errors import PortableError

    if isinstance(doc, str):
        doc = json.loads(doc)
    try:
        return [Engine(doc)]
    except PortableError as exc:
        raise PFASemanticException(str(exc)) from None


def _install_fake_titus() -> None:
    titus = types.ModuleType("titus")
    genpy = types.ModuleType("titus.genpy")
    errors = types.ModuleType("titus.errors")
    genpy.PFAEngine = type("PFAEngine", (), {"fromYaml": staticmethod(from_yaml), "fromJson": staticmethod(from_json)})
    for name, obj in list(globals().items()):
        if name.startswith("PFA") and isinstance(obj, type):
            setattr(errors, name, obj)
    errors.__all__ = [n for n in dir(errors) if n.startswith("PFA")]
    titus.genpy, titus.errors = genpy, errors
    sys.modules.update({"titus": titus, "titus.genpy": genpy, "titus.errors": errors})


def _record(ok: bool, what: str) -> None:
    RESULTS["agree" if ok else "disagree"] += 1
    if not ok:
        FAILS.append(what)


def _close(a: Any, b: Any, places: int = 7, delta: Any = None) -> bool:
    try:
        if delta is not None:
            return abs(a - b) <= delta
        if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
            return True
        return a == b or round(abs(a - b), places) == 0
    except TypeError:
        return False


def _patch_asserts(current: list[str]) -> None:
    T = unittest.TestCase

    def eq(self: Any, a: Any, b: Any, msg: Any = None) -> None:
        _record(a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)),
                f"{current[0]}: {a!r} != {b!r}")

    def almost(self: Any, a: Any, b: Any, places: Any = None, msg: Any = None, delta: Any = None) -> None:
        _record(_close(a, b, 7 if places is None else places, delta), f"{current[0]}: {a!r} !~ {b!r}")

    def true(self: Any, x: Any, msg: Any = None) -> None:
        _record(bool(x), f"{current[0]}: not true")

    def false(self: Any, x: Any, msg: Any = None) -> None:
        _record(not x, f"{current[0]}: not false")

    def raises(self: Any, exc: Any, fn: Any = None, *a: Any, **k: Any) -> Any:
        if fn is None:
            class Ctx:
                def __enter__(self) -> Any:
                    return self

                def __exit__(self, et: Any, ev: Any, tb: Any) -> bool:
                    _record(et is not None and issubclass(et, exc), f"{current[0]}: did not raise {exc.__name__}")
                    return True
            return Ctx()
        try:
            fn(*a, **k)
        except exc:
            _record(True, "")
        except Exception as other:  # noqa: BLE001
            _record(False, f"{current[0]}: raised {type(other).__name__} {other}, not {exc.__name__}")
        else:
            _record(False, f"{current[0]}: did not raise {exc.__name__}")

    T.assertEqual = T.assertEquals = eq
    T.assertAlmostEqual = T.assertAlmostEquals = almost
    T.assertTrue = true
    T.assertFalse = false
    T.assertRaises = raises


def main(folder: str) -> None:
    _install_fake_titus()
    current = [""]
    _patch_asserts(current)
    per_file = []
    tmp = Path(tempfile.mkdtemp())
    for path in sorted(Path(folder).rglob("test*.py")):
        before = dict(RESULTS)
        src = path.read_text()
        src = re.sub(r"(\d)L\b", r"\1", src).replace("xrange(", "range(")
        (tmp / path.name).write_text(src)
        ns: dict[str, Any] = {"__name__": f"titus_test_{path.stem}"}
        try:
            exec(compile(src, str(path), "exec"), ns)
        except Exception as exc:  # noqa: BLE001
            print(f"{path.name}: cannot import ({exc})")
            continue
        for obj in list(ns.values()):
            if isinstance(obj, type) and issubclass(obj, unittest.TestCase) and obj is not unittest.TestCase:
                for name in sorted(n for n in dir(obj) if n.startswith("test")):
                    current[0] = f"{path.stem}.{name}"
                    try:
                        getattr(obj(name), name)()
                    except PFASemanticException:
                        RESULTS["refused"] += 1
                        FAILS.append(f"{current[0]}: refused")
                    except Exception as exc:  # noqa: BLE001
                        RESULTS["errors"] += 1
                        FAILS.append(f"{current[0]}: {type(exc).__name__}: {str(exc)[:150]}")
        d = {k: RESULTS[k] - before[k] for k in RESULTS}
        per_file.append((path.stem, d))
        print(f"{path.stem:14s} agree {d['agree']:4d}  disagree {d['disagree']:3d}  refused {d['refused']:3d}  "
              f"errors {d['errors']:3d}")
    total = RESULTS["agree"] + RESULTS["disagree"]
    print(f"TOTAL: {RESULTS['agree']} of {total} assertions agree ({100 * RESULTS['agree'] / max(total, 1):.1f}%); "
          f"{RESULTS['refused']} test methods refused at load, {RESULTS['errors']} stopped by an exception")
    if "-v" in sys.argv:
        for f in FAILS:
            print("  ", f)


if __name__ == "__main__":
    main(sys.argv[1])
