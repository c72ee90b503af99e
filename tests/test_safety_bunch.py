"""scikit-learn's Bunch through the safe loader (issue 12): VotingClassifier/VotingRegressor/StackingClassifier/
StackingRegressor keep their members in a Bunch (`named_estimators_`) and load as they do with pickle.loads, from
pickle (protocols 0-5), joblib and skops files; the hostile variants of a Bunch (special names among its items, a
callable item, state tricks, a subclass) are refused by the loader and by `portable audit`.

Oracles: pickle.loads / joblib.load / skops give the objects the loader must give (the same Bunch, the same
predictions); the controls show the hostile Bunches are live when loaded the unsafe way.
"""
from __future__ import annotations

import pickle
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from sklearn.utils import Bunch

import portable
from portable.cli import cli
from portable.errors import PortableError, UnsafePickleError
from portable.safety import audit, judge, safe_load

from .hostile.bunches import INTERFACE, STATE_TWICE, corpus, plain_bunch, save
from .hostile.payloads import load_unsafely

CORPUS = corpus()
CASES = [(h, how) for h in CORPUS for how in h.formats]


def _ensembles() -> dict:
    from sklearn.ensemble import StackingClassifier, StackingRegressor, VotingClassifier, VotingRegressor
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 4))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    yr = X @ np.array([1.0, -2.0, 0.5, 0.0])
    members = [("lr", LogisticRegression()), ("dt", DecisionTreeClassifier(max_depth=3, random_state=0))]
    rmembers = [("r", Ridge()), ("dt", DecisionTreeRegressor(max_depth=3, random_state=0))]
    return {
        "voting_soft": (VotingClassifier(members, voting="soft").fit(X, y), X),
        "voting_hard": (VotingClassifier(members, voting="hard").fit(X, y), X),
        "voting_regressor": (VotingRegressor(rmembers).fit(X, yr), X),
        "stacking_classifier": (StackingClassifier(members, cv=3).fit(X, y), X),
        "stacking_regressor": (StackingRegressor(rmembers, cv=3).fit(X, yr), X),
    }


@pytest.fixture(scope="module")
def ensembles() -> dict:
    return _ensembles()


FORMATS = ["pickle0", "pickle1", "pickle2", "pickle5", "joblib", "joblib_zlib", "skops"]


def _save(obj, how: str, tmp_path) -> object:
    if how.startswith("pickle"):
        path = tmp_path / f"m.{how}.pkl"
        path.write_bytes(pickle.dumps(obj, protocol=int(how[-1])))
    elif how.startswith("joblib"):
        import joblib

        path = tmp_path / f"m.{how}.joblib"
        joblib.dump(obj, path, compress=3 if how == "joblib_zlib" else 0)
    else:
        import skops.io as sio

        path = tmp_path / "m.skops"
        sio.dump(obj, path)
    return path


def _predict(est, X):
    return est.predict_proba(X) if hasattr(est, "predict_proba") else est.predict(X)


@pytest.mark.parametrize("how", FORMATS)
@pytest.mark.parametrize("name", ["voting_soft", "voting_hard", "voting_regressor", "stacking_classifier",
                                  "stacking_regressor"])
def test_ensembles_load_as_the_libraries_load_them(ensembles, name, how, tmp_path):
    est, X = ensembles[name]
    path = _save(est, how, tmp_path)
    ref = load_unsafely("skops" if how == "skops" else "joblib" if how.startswith("joblib") else "pickle", path)
    loaded, notes = safe_load(path)
    assert not notes
    bunch = loaded.named_estimators_
    assert type(bunch) is Bunch and type(ref.named_estimators_) is Bunch
    assert list(bunch) == list(ref.named_estimators_)
    # the same objects as the unsafe load: each member is the one in estimators_, as the file says
    for (key, member), fitted in zip(bunch.items(), loaded.estimators_):
        assert member is fitted and getattr(bunch, key) is fitted
    assert bunch.__dict__ == ref.named_estimators_.__dict__ or how != "skops"
    np.testing.assert_array_equal(_predict(loaded, X), _predict(ref, X))
    np.testing.assert_array_equal(_predict(loaded, X), _predict(est, X))
    result = audit(path)
    assert result.safe, result.to_text()


@pytest.mark.parametrize("how", ["pickle5", "joblib", "skops"])
def test_ensembles_convert_from_the_command_line(ensembles, how, tmp_path):
    for name in ("voting_soft", "stacking_regressor"):
        est, _X = ensembles[name]
        path = _save(est, how, tmp_path)
        out = tmp_path / f"{name}.onnx"
        result = CliRunner().invoke(cli, ["convert", str(path), "--to", "onnx", "-o", str(out), "--samples", "200"])
        assert result.exit_code == 0, result.output
        assert out.exists() and "EQUIVALENT" in result.output


def test_allowlist_admits_only_the_bunch_itself(monkeypatch):
    import sklearn.utils._bunch as m

    from portable.safety.allowlist import _judge_class

    assert judge("sklearn.utils._bunch", "Bunch").allowed
    assert judge("sklearn.utils", "Bunch").allowed  # the public alias resolves to the same class
    assert _judge_class(Bunch)[0]

    class EvilBunch(Bunch):
        pass

    EvilBunch.__module__ = "sklearn.utils._bunch"
    monkeypatch.setattr(m, "EvilBunch", EvilBunch, raising=False)
    ok, why = _judge_class(EvilBunch)
    assert not ok and "items double as attributes" in why
    verdict = judge("sklearn.utils._bunch", "EvilBunch")
    assert not verdict.allowed and "items double as attributes" in verdict.reason


@pytest.fixture()
def evil_bunch_class(monkeypatch):
    """A Bunch subclass at sklearn.utils._bunch.EvilBunch, so that a file can name it."""
    import sklearn.utils._bunch as m

    class EvilBunch(Bunch):
        def __getattr__(self, key):
            return super().__getattr__(key)

    EvilBunch.__module__ = "sklearn.utils._bunch"
    EvilBunch.__qualname__ = "EvilBunch"
    monkeypatch.setattr(m, "EvilBunch", EvilBunch, raising=False)
    return EvilBunch


@pytest.mark.parametrize("hostile,how", CASES, ids=[f"{h.id}-{how}" for h, how in CASES])
def test_hostile_bunch_is_refused(hostile, how, tmp_path, evil_bunch_class):
    data, suffix = save(hostile.build(), how)
    path = tmp_path / f"evil{suffix}"
    path.write_bytes(data)
    with pytest.raises(PortableError) as info:
        safe_load(path)
    message = str(info.value)
    assert hostile.expect.lower() in message.lower(), message
    assert "Traceback" not in message
    # a refusal, never "corrupt": the file is hostile, not damaged (a skops archive was "corrupt skops archive")
    assert isinstance(info.value, UnsafePickleError) and message.split(": ", 1)[1].startswith("refused"), message
    assert "corrupt" not in message.lower(), message
    assert "LoadingBunch" not in message, message  # the loader's own stand-in; the user's class is Bunch
    with pytest.raises(PortableError):
        portable.load(path)
    result = audit(path)
    assert not result.safe, result.to_text()
    assert hostile.expect.lower() in result.to_text().lower(), result.to_text()


def _opcodes(*parts: bytes) -> bytes:
    return b"\x80\x04" + b"".join(parts) + b"."


def _text(s: str) -> bytes:
    return b"\x8c" + bytes([len(s)]) + s.encode()


#: A Bunch on the unpickler's stack: STACK_GLOBAL sklearn.utils._bunch.Bunch, NEWOBJ with no arguments.
_BUNCH = _text("sklearn.utils._bunch") + _text("Bunch") + b"\x93)\x81"
#: Files that use a Bunch as something else (a list, a set, a callable, a key, a class, a dtype's code): the loader
#: refuses each (pickle.loads fails on all but the last: numpy takes an empty dict as a structured dtype's fields),
#: and its message names the class the file names.
MISUSED_BUNCH = {
    "append": _opcodes(_BUNCH, b"K\x01a"),
    "appends": _opcodes(_BUNCH, b"(K\x01e"),
    "additems": _opcodes(_BUNCH, b"(K\x01\x90"),
    "called": _opcodes(_BUNCH, b"K\x01\x85R"),
    "obj_called": _opcodes(b"(", _BUNCH, b"o"),
    "as_key": _opcodes(b"}", _BUNCH, b"K\x01s"),
    "in_a_set": _opcodes(b"\x8f(", _BUNCH, b"\x90"),
    "as_newobj_class": _opcodes(_BUNCH, b")\x81"),
    "as_dtype_code": _opcodes(_text("numpy") + _text("dtype") + b"\x93", _BUNCH, b"\x89\x88\x87R"),
}


@pytest.mark.parametrize("name", sorted(MISUSED_BUNCH))
def test_a_misused_bunch_is_named_as_the_users_class(name, tmp_path):
    """The loader builds a file's Bunch as its own `LoadingBunch` while the file is read; messages about it (the
    unpickler's, Python's, the reconstructor table's) name scikit-learn's Bunch, the class the file names."""
    data = MISUSED_BUNCH[name]
    if name != "as_dtype_code":
        with pytest.raises(Exception):
            pickle.loads(data)  # the libraries fail on it too: a corrupt or hostile file, not a model
    path = tmp_path / f"{name}.pkl"
    path.write_bytes(data)
    with pytest.raises(PortableError) as info:
        safe_load(path)
    message = str(info.value)
    assert "LoadingBunch" not in message and "Bunch" in message, message
    result = CliRunner().invoke(cli, ["inspect", str(path)])
    assert result.exit_code == 1 and "LoadingBunch" not in result.output and "Traceback" not in result.output, \
        result.output
    assert not audit(path).safe


def test_a_bunch_whose_state_is_set_twice_is_refused(tmp_path):
    path = tmp_path / "twice.pkl"
    path.write_bytes(STATE_TWICE)
    pickle.loads(STATE_TWICE)  # the libraries take it (Bunch drops both states)
    with pytest.raises(PortableError, match="set twice"):
        safe_load(path)
    assert not audit(path).safe


@pytest.mark.parametrize("how", ["pickle5", "joblib", "skops"])
def test_hostile_bunches_are_live_without_portable(how, tmp_path):
    """The controls: loaded the unsafe way, a Bunch whose items hold '__array_interface__' is an array over address 8
    (the child process dies of a signal reading it), and a callable item answers for a method."""
    data, suffix = save(plain_bunch(__array_interface__=INTERFACE), how)
    path = tmp_path / f"ai{suffix}"
    path.write_bytes(data)
    control = {"pickle5": "pickle", "joblib": "joblib", "skops": "skops"}[how]
    code = ("import sys; from pathlib import Path; sys.path.insert(0, {root!r}); import numpy; "
            "from tests.hostile.payloads import load_unsafely; b = load_unsafely({control!r}, Path({path!r})); "
            "print(numpy.asarray(b).sum())").format(root=str(__import__("pathlib").Path(__file__).parents[1]),
                                                  control=control, path=str(path))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120)
    assert proc.returncode < 0, (proc.returncode, proc.stderr[-400:])

    data, suffix = save(plain_bunch(transform=np.mean), how)
    path = tmp_path / f"callable{suffix}"
    path.write_bytes(data)
    b = load_unsafely(control, path)
    assert type(b) is Bunch and b.transform([1.0, 2.0, 6.0]) == 3.0


def test_the_walks_judge_a_bunch_as_the_loader_does():
    """`states.check_graph` (skops) and the internals walk (`validate_loaded`: joblib, trusted loads, the fallback
    walk) refuse what the checked pass refuses, and admit a clean Bunch."""
    from portable.safety.internals import validate_loaded
    from portable.safety.states import BadState, check_graph
    from portable.safety.table import Refused

    clean = {"named": plain_bunch(a=np.arange(3), b="x", c=plain_bunch(d=1.5))}
    check_graph(clean)
    validate_loaded(clean)
    for bad in (plain_bunch(__array_interface__=INTERFACE), plain_bunch(transform=np.mean),
                [plain_bunch(ok=plain_bunch(__array__=1))]):
        with pytest.raises(BadState):
            check_graph({"x": bad})
        with pytest.raises(Refused):
            validate_loaded({"x": bad})


def test_bunch_deep_in_lists_goes_through_the_fallback_walk(tmp_path):
    """A Bunch 60 lists deep (beyond the checked pass's swaps, so the loader walks the whole object afterwards): its
    items are real objects and it is a Bunch; with a special name among its items it is refused."""
    def nest(b):
        obj = [b]
        for _ in range(60):
            obj = [obj]
        return obj

    path = tmp_path / "deep.pkl"
    path.write_bytes(pickle.dumps(nest(plain_bunch(x=np.arange(3), y=[np.ones(2)])), protocol=5))
    loaded, _ = safe_load(path)
    for _ in range(61):
        loaded = loaded[0]
    assert type(loaded) is Bunch and loaded.x.tolist() == [0, 1, 2] and type(loaded.y[0]) is np.ndarray
    path.write_bytes(pickle.dumps(nest(plain_bunch(x=np.arange(3), __array_interface__=INTERFACE)), protocol=5))
    with pytest.raises(PortableError, match="__array_interface__"):
        safe_load(path)
