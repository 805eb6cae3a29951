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
