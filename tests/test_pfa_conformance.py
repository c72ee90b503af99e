"""The PFA conformance table: for every function of the spec's library (libfcns.xml, 449 functions), cases written
from the spec's description with expected values computed independently (Python's math, numpy, scipy, by hand),
including the spec's error codes. `portable formats --pfa` prints the coverage this table checks."""
from __future__ import annotations

import pytest

from portable.errors import PFARuntimeError
from portable.formats.pfa import sigs
from portable.formats.pfa.rows import PFAErr

from .pfa_conformance import cases_coll, cases_core, cases_model, cases_text
from .pfa_conformance.helpers import Check, Err, evaluate, same

CASES = cases_core.CASES + cases_text.CASES + cases_coll.CASES + cases_model.CASES


def _id(case: tuple, i: int) -> str:
    return f"{i:03d}-{case[0]}"


@pytest.mark.parametrize("name,expr,want", CASES, ids=[_id(c, i) for i, c in enumerate(CASES)])
def test_case(name, expr, want):
    if isinstance(want, Err):
        with pytest.raises(PFAErr) as info:
            evaluate(expr, randseed=1)
        assert info.value.code == want.code, (info.value.message, info.value.code)
        return
    got = evaluate(expr, randseed=1)
    if isinstance(want, Check):
        assert want.test(got), (want.what, got)
        return
    assert same(got, want), (got, want)


def test_every_library_function_has_a_case():
    spec = set(sigs.table())
    covered = {c[0] for c in CASES}
    assert covered <= spec, sorted(covered - spec)
    assert sorted(spec - covered) == []


def test_engine_reports_runtime_errors_with_codes():
    import portable

    m = portable.load({"input": "double", "output": "double",
                       "action": [{"m.log": ["input", {"cast.int": ["input"]}]}], "@": "test"})
    assert m.tier == "sequential"
    with pytest.raises(PFARuntimeError) as info:
        m.run({"input": [2.0, -1.0]})
    assert info.value.code == 27170 and "record 1" in str(info.value)


def test_cli_prints_the_coverage():
    from click.testing import CliRunner

    from portable.cli import cli

    r = CliRunner().invoke(cli, ["formats", "--pfa"])
    assert r.exit_code == 0, r.output
    assert f"{len(sigs.table())} of {len(sigs.table())} functions implemented" in r.output
