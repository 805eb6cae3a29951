"""`minicnn models`: every registered model once, with the input it is made for and the parameters and
multiply-adds `minicnn.analysis` counts there, in a table within 80 columns; names filter it."""

from __future__ import annotations

import numpy as np
import pytest

from minicnn import core
from minicnn.analysis import analyze
from minicnn.cli import main
from minicnn.models import MODELS, build, default_input


def _rows(out: str) -> dict[str, list[str]]:
    lines = out.splitlines()
    assert lines[0].split() == ["model", "input", "parameters", "multiply-adds"] and set(lines[1]) == {"-"}
    rows = {}
    for line in lines[2:]:
        if not line.strip():
            break
        name, *cells = line.split()
        rows[name] = cells
    return rows


def test_every_registered_model_is_listed_with_its_counts_within_80_columns(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert max(map(len, out.splitlines())) <= 80
    rows = _rows(out)
    assert sorted(rows) == sorted(MODELS)
    for name in sorted(MODELS):  # the counts are analyze's of a normal (random-weight) build, one at a time
        model = build(name)
        summary = analyze(model, default_input(name))
        assert rows[name] == ["x".join(map(str, default_input(name))), f"{summary.params:,}", f"{summary.macs:,}"]
        del model
    assert rows["mobilenet_v1"][2] == "568,740,352"  # the paper's 569 million mult-adds (Table 8)
    assert rows["lenet5"][:2] == ["1x28x28", "61,706"]
    assert out.rstrip().endswith(f"{len(MODELS)} models; per-layer detail: minicnn summary NAME")


def test_names_filter_the_list_and_an_unknown_one_is_refused(capsys):
    assert main(["models", "resnet20", "lenet5", "resnet20"]) == 0
    assert list(_rows(capsys.readouterr().out)) == ["resnet20", "lenet5"]
    assert main(["models", "lenet5", "lenet6"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("minicnn models: unknown model 'lenet6'; registered: alexnet")


def test_models_help_fits_80_columns(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["models", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "only these models" in out and max(map(len, out.splitlines())) <= 80
    with pytest.raises(SystemExit):
        main(["--help"])
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines() if line.startswith("    ")]
    assert "models" in listed and "export" in listed


def test_counting_builds_draw_no_random_numbers_and_match_a_normal_build():
    core.manual_seed(3)
    state = core.rng().bit_generator.state
    with core.unfilled_weights():
        counted = build("vgg11")  # ~133M weights: zeros, no draws
    assert core.rng().bit_generator.state == state  # the generator did not move
    assert all(not np.any(p.data) for p in counted.parameters())
    normal = build("lenet5")
    assert core.rng().bit_generator.state != state and any(np.any(p.data) for p in normal.parameters())
    with core.unfilled_weights():
        small = build("lenet5")
    assert [p.shape for p in small.parameters()] == [p.shape for p in normal.parameters()]
