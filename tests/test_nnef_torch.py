"""PyTorch models exported with torch.onnx.export convert to NNEF, run in portable's executor and agree with
onnxruntime (on the ONNX file) and with nnef-tools' PyTorch interpreter (on the NNEF artifact)."""
from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("nnef_tools")
ort = pytest.importorskip("onnxruntime")

import portable  # noqa: E402


def cnn() -> Any:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(8, 16, 3, stride=2, padding=1, groups=2), torch.nn.BatchNorm2d(16), torch.nn.ReLU(),
        torch.nn.MaxPool2d(2), torch.nn.Flatten(), torch.nn.Linear(16 * 2 * 2, 10), torch.nn.Softmax(dim=1))


def mlp() -> Any:
    torch.manual_seed(1)
    return torch.nn.Sequential(torch.nn.Linear(20, 64), torch.nn.ReLU(), torch.nn.Linear(64, 32), torch.nn.Tanh(),
                               torch.nn.Linear(32, 3))


class Recurrent(torch.nn.Module):
    def __init__(self, kind: str) -> None:
        super().__init__()
        torch.manual_seed(2)
        cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind]
        self.rnn = cls(input_size=6, hidden_size=12, num_layers=2, batch_first=True, bidirectional=True)
        self.head = torch.nn.Linear(24, 4)

    def forward(self, x: Any) -> Any:
        y, _ = self.rnn(x)
        return self.head(y[:, -1, :])


def _randomize_bn(model: Any) -> None:
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)


def export(model: Any, shape: tuple[int, ...], path: Path) -> Path:
    model.eval()
    _randomize_bn(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(shape),), str(path), input_names=["x"], output_names=["y"],
                          opset_version=17, dynamo=False)
    return path


def nnef_tools_interpreter(folder: Path, x: np.ndarray) -> np.ndarray:
    from nnef_tools.interpreter.pytorch import Interpreter

    text = (folder / "graph.nnef").read_text()
    fragments = re.findall(r"\bfragment\s+(\w+)", text)
    interp = Interpreter(str(folder), device="cpu", decomposed=fragments)
    out = interp([x])
    return next(iter(out.values()))


CASES = {
    "cnn": (cnn, (4, 3, 16, 16)),
    "mlp": (mlp, (8, 20)),
    "lstm": (lambda: Recurrent("lstm"), (3, 5, 6)),
    "gru": (lambda: Recurrent("gru"), (3, 5, 6)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_pytorch_export_runs_in_nnef_and_agrees(name: str, tmp_path: Path) -> None:
    build, shape = CASES[name]
    onnx_path = export(build(), shape, tmp_path / f"{name}.onnx")
    art = portable.convert(str(onnx_path), to="nnef", check=False)
    folder = art.save(tmp_path / f"{name}.nnef")
    rng = np.random.default_rng(0)
    x = rng.normal(size=shape).astype(np.float32)
    ours = art.run({"x": x})["y"]
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    want = sess.run(None, {"x": x})[0]
    np.testing.assert_allclose(ours, want, rtol=1e-4, atol=1e-5)
    theirs = nnef_tools_interpreter(Path(folder), x)
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5)
    reloaded = portable.load(str(folder))
    np.testing.assert_allclose(reloaded.run({"x": x})["y"], want, rtol=1e-4, atol=1e-5)


def test_static_batch_export_is_checked_in_batches_of_its_size(tmp_path: Path) -> None:
    """torch.onnx.export without dynamic axes fixes the batch (here 4): the default check still runs and passes."""
    from click.testing import CliRunner

    from portable.cli import cli

    onnx_path = export(cnn(), (4, 3, 16, 16), tmp_path / "cnn4.onnx")
    out = tmp_path / "cnn4.nnef"
    result = CliRunner().invoke(cli, ["convert", str(onnx_path), "--to", "nnef", "-o", str(out), "--samples", "200"])
    assert result.exit_code == 0, result.output
    assert (out / "graph.nnef").is_file()
