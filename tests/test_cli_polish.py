"""What the user-facing commands print and keep: `minicnn summary` fits 80 columns and cuts nothing,
`minicnn evaluate` never overwrites an earlier figure, `minicnn train` reports validation and test
under their own names."""

from __future__ import annotations

import numpy as np
import pytest

from minicnn import core
from minicnn.analysis import analyze
from minicnn.cli import main
from minicnn.models import MODELS, build, config_for, default_input

COLUMNS = 80


def _widest(text: str) -> int:
    return max(map(len, text.splitlines()))


def _fits(text: str) -> bool:
    """Every line fits 80 columns, but for a long path alone on its line (paths are never broken)."""
    return all(len(line) <= COLUMNS or len(line.split()) == 1 for line in text.splitlines())


def _table_rows(text: str) -> list[tuple[str, list[str]]]:
    """(layer name, the other cells of its row) for every row of the per-layer table of `summary`:
    the lines between the two rules; a name alone on a line belongs to the line after it."""
    lines = text.splitlines()
    first = next(i for i, line in enumerate(lines) if set(line) == {"-"})
    last = next(i for i in range(first + 1, len(lines)) if set(lines[i]) == {"-"})
    rows, alone = [], None
    for line in lines[first + 1:last]:
        if alone is not None:
            assert line.startswith(" "), f"a name alone on its line must be followed by its row: {line!r}"
            rows.append((alone, line.split()))
            alone = None
        elif " " not in line:
            alone = line
        else:
            name, *rest = line.split()
            rows.append((name, rest))
    assert alone is None
    return rows


def _assert_whole(text: str, summary) -> None:
    """Every layer of `summary` has its row, with its whole name and type and its exact counts."""
    rows = _table_rows(text)
    assert [name for name, _ in rows] == [r.name for r in summary.rows]
    for (_, cells), r in zip(rows, summary.rows, strict=True):
        assert " ".join(cells).startswith(r.type), (r.type, cells)
        assert {f"{r.params:,}", str(r.params)} & set(cells) and {f"{r.macs:,}", str(r.macs)} & set(cells)


@pytest.fixture
def zero_weights(monkeypatch):
    """Weights made as zeros instead of random draws: the summary reads only their shapes, and vgg19
    (144 million weights) builds in a fraction of a second instead of two."""
    import minicnn.layers.conv
    import minicnn.layers.dct
    import minicnn.layers.dense

    def zeros(shape, fan_in):
        return np.zeros(shape, core.DEFAULT_DTYPE)

    for module in (minicnn.layers.dense, minicnn.layers.conv, minicnn.layers.dct):
        monkeypatch.setattr(module, "kaiming_uniform", zeros)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_summary_of_every_model_fits_80_columns_and_cuts_nothing(name, capsys, zero_weights):
    assert main(["summary", name]) == 0
    out = capsys.readouterr().out
    assert _widest(out) <= COLUMNS
    shape = default_input(name)
    _assert_whole(out, analyze(build(name, **config_for(name, shape)), shape))


@pytest.mark.parametrize("argv, commas", [
    (["vgg_cifar", "--input", "4096,4096,4096", "--width", "0.0625"], True),  # one space between columns
    (["cifar_net", "--input", "4096,4096,4096", "--width", "8"], False),  # and counts without commas
])
def test_summary_at_the_largest_inputs_still_fits(argv, commas, capsys, zero_weights):
    assert main(["summary", *argv]) == 0
    out = capsys.readouterr().out
    assert _widest(out) <= COLUMNS
    name, shape, width = argv[0], tuple(int(v) for v in argv[2].split(",")), float(argv[4])
    summary = analyze(build(name, **config_for(name, shape, width=width)), shape)
    _assert_whole(out, summary)
    biggest = max(r.macs for r in summary.rows)
    assert (f"{biggest:,}" in out.split()) == commas and (str(biggest) in out.split()) != commas
    assert f"multiply-adds (weights only, 1 MAC = 1 op): {summary.macs:,}" in out  # the totals keep theirs


def test_summary_shows_a_long_name_and_a_long_type_whole(capsys, monkeypatch):
    """A layer nested 20 deep (name "0.0.....0", 39 characters) and a LocallyConnected2D (18 letters):
    the name gets a line of its own, the row follows; both were cut before (to 27 and 17)."""
    from minicnn import layers as L

    deep = L.LocallyConnected2D(1, 2, (6, 6), 3)
    for _ in range(19):
        deep = L.Sequential(deep)
    monkeypatch.setitem(MODELS, "deep", lambda: L.Sequential(deep, L.Flatten(), L.Linear(32, 3)))
    assert main(["summary", "deep", "--input", "1,6,6"]) == 0
    out = capsys.readouterr().out
    long_name = ".".join(["0"] * 20)
    assert _widest(out) <= COLUMNS
    lines = out.splitlines()
    at = lines.index(long_name)
    assert lines[at + 1].split()[:3] == ["LocallyConnected2D", "2x4x4", "320"]
    assert _table_rows(out)[0] == (long_name, lines[at + 1].split())


def test_summary_says_when_the_model_does_not_fit_in_memory(capsys, monkeypatch):
    """The weights are really built: a size the parser accepts can still be too big for the machine
    (lenet5 at 1,4096,4096 needs a 120 x 16,711,744 Linear). One line on stderr, exit 2, no traceback."""
    import minicnn.models

    def too_big(name, **config):
        raise MemoryError("Unable to allocate 7.47 GiB")

    monkeypatch.setattr(minicnn.models, "build", too_big)
    assert main(["summary", "lenet5", "--input", "1,4096,4096"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "Traceback" not in captured.err
    assert captured.err.startswith("minicnn summary: not enough memory to build lenet5")
    assert "--input" in captured.err and _widest(captured.err) <= COLUMNS


# ---- minicnn evaluate: the confusion matrix ---------------------------------------------------------

@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A one-epoch LeNet-5 run on 64 random 28x28 images (32 test images), and its dataset."""
    folder = tmp_path_factory.mktemp("polish")
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, (96, 28, 28), dtype=np.uint8), rng.integers(0, 10, 96)
    np.savez(folder / "tiny.npz", x_train=x[:64], y_train=y[:64], x_test=x[64:], y_test=y[64:])
    assert main(["train", "--dataset", str(folder / "tiny.npz"), "--epochs", "1", "--batch-size", "32",
                 "--no-progress", "--out", str(folder / "run")]) == 0
    return folder


def _evaluate(trained, capsys, *options: str) -> tuple[int, str, str]:
    code = main(["evaluate", str(trained / "run" / "checkpoint.npz"), *options])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_evaluate_never_overwrites_an_earlier_figure(trained, capsys):
    """The default figure goes beside the checkpoint; an earlier one stays, the new one takes the next
    free name and the command says so (as `minicnn train` does with runs/NAME-2)."""
    run = trained / "run"
    for path in run.glob("confusion*.png"):
        path.unlink()
    assert _evaluate(trained, capsys)[0] == 0
    first = (run / "confusion.png").read_bytes()
    code, out, _ = _evaluate(trained, capsys)
    assert code == 0 and (run / "confusion.png").read_bytes() == first
    assert (run / "confusion-2.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    said = " ".join(out.split())
    assert f"saved to {run / 'confusion-2.png'} ({run / 'confusion.png'} is an earlier one, kept)" in said
    assert _evaluate(trained, capsys)[0] == 0 and (run / "confusion-3.png").is_file()
    assert _fits(out)


def test_evaluate_refuses_an_existing_png_unless_told_to_overwrite(trained, capsys):
    png = trained / "mine.png"
    png.write_bytes(b"an earlier figure")
    code, out, err = _evaluate(trained, capsys, "--png", str(png))
    assert code == 2 and out == "" and png.read_bytes() == b"an earlier figure"
    said = " ".join(err.split())  # as read, across the wrapped lines
    assert said == f"minicnn evaluate: {png} already exists; choose another --png, or add --overwrite to replace it"
    assert _fits(err)
    assert _evaluate(trained, capsys, "--png", str(png), "--overwrite")[0] == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_wants_a_png_file_name(trained, capsys):
    """--png c.txt was a matplotlib traceback ("Format 'txt' is not supported") after the evaluation."""
    code, out, err = _evaluate(trained, capsys, "--png", str(trained / "c.txt"))
    assert code == 2 and out == "" and not (trained / "c.txt").exists()
    assert err.startswith("minicnn evaluate: --png") and "ending in .png" in err


def test_confusion_text_fits_80_columns_and_names_every_class_whole():
    from minicnn.commands.evaluate import format_confusion
    from minicnn.data.datasets import CIFAR_CLASSES, FASHION_CLASSES

    matrix = np.full((10, 10), 99_999)  # a count as wide as a 100,000-image test set can make
    for names in (CIFAR_CLASSES, FASHION_CLASSES, [str(k) for k in range(10)]):
        text = format_confusion(matrix, names)
        assert _widest(text) <= COLUMNS
        table, legend = text.splitlines()[:11], " ".join(" ".join(text.splitlines()[11:]).split())
        assert table[0].split() == ["true\\pred", *map(str, range(10)), "recall"]
        assert [line.split()[0] for line in table[1:]] == [str(k) for k in range(10)]
        if names[0] != "0":
            assert legend == "classes: " + ", ".join(f"{k} {name}" for k, name in enumerate(names))
        else:
            assert legend == ""  # digits: the class numbers are the names


def test_confusion_text_of_many_classes_lists_the_recalls():
    from minicnn.commands.evaluate import format_confusion

    names = [f"class number {k}" for k in range(30)]  # 20 classes still fit as a matrix, 30 do not
    matrix = np.eye(30, dtype=np.int64) * 7 + 1
    text = format_confusion(matrix, names)
    assert _widest(text) <= COLUMNS and "see the PNG" in text
    assert " 3 class number 3: 21.6% (8/37)" in text.splitlines()


# ---- minicnn train: what each epoch is scored on ---------------------------------------------------

def _split_data():
    from minicnn.data import Dataset

    rng = np.random.default_rng(1)
    x = rng.standard_normal((60, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, 60)
    return Dataset("toy", x[:40], y[:40], x[40:], y[40:], [str(k) for k in range(10)])


def _fit_logged(val):
    from minicnn import optim
    from minicnn.app.train import FitConfig, fit

    core.manual_seed(0)
    model = build("lenet5")
    said: list[str] = []
    result = fit(model, _split_data(), optim.SGD(model.parameters(), 0.05),
                 FitConfig(epochs=2, batch_size=20, progress=False), val=val, log=said.append)
    return model, result, said


@pytest.mark.parametrize("held_out", [True, False])
def test_fit_heads_the_scored_columns_with_the_split_it_scored(held_out):
    """With a held-out split the epoch columns are "val" and show its scores; without one the test
    split is what was scored and the columns say "test" (they said "validation" either way). The
    closing test accuracy is always the test split's."""
    from minicnn.app.train import evaluate

    rng = np.random.default_rng(2)
    val = (rng.standard_normal((10, 1, 28, 28)).astype(np.float32), rng.integers(0, 10, 10)) if held_out else None
    model, result, said = _fit_logged(val)
    name = "val" if held_out else "test"
    assert said[0].split() == ["epoch", "train", "loss", "train", "acc", name, "loss", name, "acc", "images/s"]
    assert [line.split()[0] for line in said[1:3]] == ["1/2", "2/2"]
    x, y = val if held_out else (_split_data().x_test, _split_data().y_test)
    scored = evaluate(model, x, y)
    assert said[2].split()[3:5] == [f"{scored.loss:.4f}", f"{scored.accuracy:.2%}"]
    test = evaluate(model, _split_data().x_test, _split_data().y_test)
    assert said[3].startswith(f"test accuracy {test.accuracy:.2%} ({test.correct}/20) after 2 epochs")
    assert said[4].startswith("wall time ") and len(said) == 5
    assert all(len(line) <= COLUMNS for line in said)


def test_train_output_fits_80_columns_and_names_the_splits(trained, capsys, tmp_path):
    """The plan line was 180 characters, the epoch and closing lines 86-88."""
    import json

    for extra, splits in (([], "64 training, 32 test images (no --val-size: epochs scored on test)"),
                          (["--val-size", "16"], "48 training, 16 validation (held out from training), 32 test images")):
        out_dir = tmp_path / f"run{len(extra)}"
        assert main(["train", "--dataset", str(trained / "tiny.npz"), "--epochs", "2", "--batch-size", "32",
                     "--no-progress", "--out", str(out_dir), *extra]) == 0
        out = capsys.readouterr().out
        assert _fits(out) and splits in out.splitlines()
        saved = json.loads((out_dir / "metrics.json").read_text())
        split = "val" if extra else "test"
        assert saved["summary"]["scored_split"] == ("validation" if extra else "test")
        assert set(saved["history"][0]) >= {f"{split}_loss", f"{split}_acc"}  # as the table says
        header = (out_dir / "metrics.csv").read_text().splitlines()[0].split(",")
        assert header[4:6] == [f"{split}_loss", f"{split}_acc"]
        assert ("val_loss" in json.dumps(saved)) == bool(extra)


def test_train_overwrite_also_removes_the_runs_later_figures(trained, capsys, tmp_path):
    """confusion-2.png, -3, ... are evaluate's figures of the run: --overwrite replaces the run, so
    they go with it (the figures of the new run would otherwise sit next to the old ones)."""
    out_dir = tmp_path / "run"
    argv = ["train", "--dataset", str(trained / "tiny.npz"), "--epochs", "1", "--batch-size", "32", "--no-progress",
            "--out", str(out_dir)]
    assert main(argv) == 0
    for name in ("confusion.png", "confusion-2.png", "confusion-3.png", "notes.txt"):
        (out_dir / name).write_text("figure of the earlier run")
    assert main([*argv, "--overwrite"]) == 0
    capsys.readouterr()
    assert sorted(p.name for p in out_dir.iterdir()) == ["checkpoint.npz", "curves.png", "metrics.csv",
                                                         "metrics.json", "notes.txt"]


def test_train_refuses_a_method_the_model_does_not_take(trained, capsys, tmp_path):
    """--method fft with resnet20 trained with im2col and said nothing (config_for drops the option)."""
    out_dir = tmp_path / "run"
    assert main(["train", "--dataset", str(trained / "tiny.npz"), "--model", "resnet20", "--method", "fft",
                 "--epochs", "1", "--no-progress", "--out", str(out_dir)]) == 2
    captured = capsys.readouterr()
    said = " ".join(captured.err.split())
    assert said == ("minicnn train: --method fft: resnet20 has no choice of convolution algorithm; "
                    "lenet5, lenet5_caffe take one")
    assert captured.out == "" and not out_dir.exists()


def test_evaluate_refuses_a_png_in_a_missing_folder_before_evaluating(trained, capsys):
    """It was found only after the evaluation, as a failed write (exit 1)."""
    code, out, err = _evaluate(trained, capsys, "--png", str(trained / "no" / "such" / "c.png"))
    assert code == 2 and out == ""
    assert " ".join(err.split()) == f"minicnn evaluate: --png {trained / 'no' / 'such' / 'c.png'}: there is no " \
                                    f"folder {trained / 'no' / 'such'}"


def test_train_reports_an_unknown_model_before_reading_any_data(tmp_path, capsys, monkeypatch):
    """A misspelt --model is the first thing said: no dataset is read or downloaded before it."""
    import minicnn.data

    def no_data(*args, **kwargs):
        raise AssertionError("the dataset was loaded before the model name was checked")

    monkeypatch.setattr(minicnn.data, "load_dataset", no_data)
    code = main(["train", "--model", "lenet55", "--dataset", "mnist", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and "unknown model 'lenet55'; registered: " in err and "lenet5" in err
    assert _fits(err)
    assert not (tmp_path / "run").exists()
