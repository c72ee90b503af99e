"""The registry: formats, converter routes, plugins from entry points, and the light import."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings

import pytest

import portable
from portable.errors import NoConverterError, UnknownFormatError, InputError
from portable.registry import REGISTRY, ConverterInfo, Registry, converter


HEAVY = ("onnx", "onnxruntime", "skl2onnx", "nnef", "nnef_tools", "torch")


@pytest.mark.parametrize("code", [
    "import portable",
    "import portable; portable.list_formats(); portable.list_converters()",  # the registry itself stays light too
])
def test_import_portable_is_light(code):
    probe = f"{code}; import sys; print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_builtin_formats_are_registered():
    assert {"sklearn", "pickle", "pfa", "onnx", "nnef"} <= set(portable.list_formats())
    assert portable.list_formats()["onnx"].is_target and portable.list_formats()["nnef"].is_target


def test_pickle_reaches_onnx_through_sklearn():
    route = REGISTRY.route("pickle", "onnx")
    assert [(c.source, c.target) for c in route] == [("pickle", "sklearn"), ("sklearn", "onnx")]
    assert REGISTRY.route("onnx", "onnx") == []


def test_a_miss_lists_what_exists():
    reg = Registry()
    with pytest.raises(NoConverterError) as err:
        reg.route("onnx", "sklearn")
    msg = str(err.value)
    assert "from 'onnx' to 'sklearn'" in msg and "sklearn -> onnx" in msg and "pickle -> sklearn" in msg


def test_unknown_format_name_lists_formats():
    with pytest.raises(UnknownFormatError, match="registered formats: .*nnef.*onnx"):
        REGISTRY.format("tflite")


def test_sniffing(tmp_path):
    from sklearn.linear_model import LinearRegression

    assert REGISTRY.sniff(LinearRegression()).name == "sklearn"
    assert REGISTRY.sniff({"input": "double", "output": "double", "action": "input"}).name == "pfa"
    with pytest.raises(InputError, match="no such file"):
        REGISTRY.sniff(tmp_path / "missing.pkl")
    odd = tmp_path / "model.weird"
    odd.write_text("hello")
    with pytest.raises(UnknownFormatError, match="not a format portable recognises"):
        REGISTRY.sniff(odd)


def test_route_prefers_the_cheapest_chain():
    reg = Registry()
    reg.formats  # load built-ins
    calls = []

    def direct(model, options):
        calls.append("direct")
        return model

    reg.add_converter(ConverterInfo("pickle", "onnx", "direct", direct, __name__, cost=5.0))
    assert [c.name for c in reg.route("pickle", "onnx")] != ["direct"]  # 0.1 + 1 beats 5
    reg.add_converter(ConverterInfo("pickle", "onnx", "cheap", direct, __name__, cost=0.5))
    assert [c.name for c in reg.route("pickle", "onnx")] == ["cheap"]


def test_converter_with_missing_library_is_skipped_with_a_hint():
    reg = Registry()
    reg.formats
    reg.add_converter(ConverterInfo("onnx", "sklearn", "needs_lib", lambda m, o: m, __name__,
                                    requires=("surely_not_installed_lib_xyz",)))
    with pytest.raises(NoConverterError, match="needs surely_not_installed_lib_xyz"):
        reg.route("onnx", "sklearn")


def _fake_distribution(tmp_path, name, entry_value, module_source=None):
    dist = tmp_path / f"{name}-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[portable.converters]\n{name} = {entry_value}\n")
    if module_source is not None:
        (tmp_path / f"{entry_value.split(':')[0]}.py").write_text(textwrap.dedent(module_source))


def test_third_party_converter_from_entry_point(tmp_path, monkeypatch):
    _fake_distribution(tmp_path, "portable_toy", "portable_toy_plugin", """
        from portable.registry import converter, register_format

        @register_format("toy", extensions=(".toy",), target=True, description="a toy target")
        class Toy:
            @staticmethod
            def sniff(source):
                return False

            @staticmethod
            def load(source, options):
                raise NotImplementedError

        @converter("onnx", "toy")
        def onnx_to_toy(model, options):
            return model
    """)
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = Registry()
    assert "toy" in reg.formats
    route = reg.route("pickle", "toy")
    assert [c.target for c in route] == ["sklearn", "onnx", "toy"]
    assert route[-1].module == "portable_toy_plugin"


def test_entry_point_callable_receives_the_registry(tmp_path, monkeypatch):
    _fake_distribution(tmp_path, "portable_fn", "portable_fn_plugin:register", """
        from portable.registry import ConverterInfo

        def register(registry):
            registry.add_converter(ConverterInfo("onnx", "pfa", "onnx_to_pfa", lambda m, o: m, __name__))
    """)
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = Registry()
    assert [c.name for c in reg.route("onnx", "pfa")] == ["onnx_to_pfa"]


def test_broken_plugin_is_a_warning_not_a_crash(tmp_path, monkeypatch):
    _fake_distribution(tmp_path, "portable_broken", "module_that_does_not_exist_xyz")
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = Registry()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        formats = reg.formats
    assert "onnx" in formats
    assert any("portable_broken" in str(w.message) for w in caught)
    assert reg.plugin_errors and "module_that_does_not_exist_xyz" in reg.plugin_errors[0]


def test_decorator_registers_into_the_default_registry():
    REGISTRY.formats

    @converter("nnef", "pfa", name="test_only_edge")
    def nnef_to_pfa(model, options):
        return model

    try:
        assert any(c.name == "test_only_edge" for c in REGISTRY.converters)
    finally:
        REGISTRY._converters.pop(("nnef", "pfa", "test_only_edge"))


def test_public_table_is_read_only():
    with pytest.raises(TypeError):
        REGISTRY.formats["x"] = None  # type: ignore[index]


def test_public_functions_survive_submodule_imports():
    """Importing portable.equivalence.inputs (or any format/converter module) must not break portable.check() & co."""
    import importlib

    for mod in ("portable.equivalence.inputs", "portable.formats.onnx", "portable.converters.sklearn"):
        importlib.import_module(mod)
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    est = LogisticRegression(max_iter=1000).fit(X, y)
    art = portable.convert(est, to="onnx", check=False)
    assert portable.check(est, art, samples=50).equivalent
    assert "onnx" in portable.list_formats() and portable.list_converters()
