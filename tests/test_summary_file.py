"""`minicnn summary FILE`: the model of a training checkpoint or a compressed .fr.npz, as
`minicnn.app.load_model` rebuilds it, at the input the file records (else --input), within 80 columns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from minicnn.analysis import analyze
from minicnn.app import load_model, save_checkpoint
from minicnn.app.frequency import describe, save_compressed, to_frequency
from minicnn.cli import main
from minicnn.models import build


@pytest.fixture
def here(tmp_path, monkeypatch):
    """Work in tmp_path, so the file names in the output are short."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _table_rows(out: str) -> list[str]:
    """The layer names of the per-layer table (between the two rules)."""
    lines = out.splitlines()
    rules = [i for i, line in enumerate(lines) if line and set(line) == {"-"}]
    return [line.split()[0] for line in lines[rules[0] + 1:rules[1]] if line.strip()]


def test_a_checkpoint_is_summarised_as_it_is_in_the_file(here, capsys):
    model = build("cifar_net", num_classes=7, width=0.5)
    save_checkpoint("small.npz", model, meta={"model": "cifar_net", "model_config": {"num_classes": 7, "width": 0.5},
                                              "input_shape": [3, 32, 32], "dataset": "cifar10"})
    assert main(["summary", "small.npz"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[:3] == ["small.npz", "cifar_net (num_classes=7, width=0.5) from a checkpoint file",
                                    "input 3x32x32, trained on cifar10"]
    expected = analyze(load_model("small.npz").model, (3, 32, 32))
    assert _table_rows(out) == [r.name for r in expected.rows]
    assert f"parameters (all, with biases and BatchNorm): {expected.params:,}" in out
    assert "input 3x32x32 -> output 7" in out and "DCT layers" not in out
    assert max(map(len, out.splitlines())) <= 80


def test_a_compressed_file_shows_its_dct_layers_and_kept_coefficients(here, capsys):
    model = to_frequency(build("lenet5"), keep=0.2)
    save_compressed(model, "lenet5.fr.npz", meta=describe("lenet5", {}, model, input_shape=[1, 28, 28]))
    loaded = load_model("lenet5.fr.npz")
    weights = [layer.mask for layer in loaded.model.modules() if hasattr(layer, "mask")]
    kept, total = sum(int(np.count_nonzero(m)) for m in weights), sum(m.size for m in weights)
    assert 0.19 < kept / total < 0.21
    assert main(["summary", "lenet5.fr.npz"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[1:3] == ["lenet5 from a compressed file", "input 1x28x28"]
    assert out.splitlines()[3] == f"DCT layers: 5, coefficients kept: {kept:,} of {total:,} ({100 * kept / total:.1f}%)"
    assert "DCTConv2D" in out and "DCTLinear" in out and max(map(len, out.splitlines())) <= 80


def test_a_file_without_an_input_shape_needs_input(here, capsys):
    save_checkpoint("bare.npz", build("lenet5"), meta={"model": "lenet5", "model_config": {}})
    assert main(["summary", "bare.npz"]) == 2
    err = capsys.readouterr().err
    assert err == ("minicnn summary: bare.npz does not record the input shape of its model (lenet5);\n"
                   "  give it as --input C,H,W\n")
    assert main(["summary", "bare.npz", "--input", "1,28,28"]) == 0
    assert "input 1x28x28 -> output 10" in capsys.readouterr().out
    assert main(["summary", "bare.npz", "--input", "1,32"]) == 2
    assert "expected --input as C,H,W" in capsys.readouterr().err


def test_a_file_fixes_its_architecture_and_bad_files_are_refused(here, capsys):
    save_checkpoint("m.npz", build("lenet5"), meta={"model": "lenet5", "model_config": {}, "input_shape": [1, 28, 28]})
    assert main(["summary", "m.npz", "--width", "2"]) == 2
    assert "its architecture is fixed" in capsys.readouterr().err
    Path("junk.npz").write_bytes(b"not a zip file")
    assert main(["summary", "junk.npz"]) == 2
    assert main(["summary", "missing.npz"]) == 2
    assert main(["summary", "lenet6"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("minicnn summary: ") == 3
    assert "unknown model 'lenet6' and no such file" in err
    build("lenet5").save("plain.npz")
    assert main(["summary", "plain.npz"]) == 2
    assert "plain state dict, which does not name its model" in capsys.readouterr().err
