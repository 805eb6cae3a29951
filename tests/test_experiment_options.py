"""The studies' own options are range-checked in the parser, and a study's ValueError reaches the
user as one line on stderr (exit 2), never as a traceback."""

from __future__ import annotations

import pytest

from minicnn.cli import main


@pytest.mark.parametrize("argv", [
    ["cifar", "--epochs", "0"], ["cifar", "--lr", "-1"], ["cifar", "--width", "100"],
    ["downsampling", "--num-images", "0"], ["downsampling_nets", "--width", "0"],
    ["downsampling_nets", "--seeds", "-1"],
])
def test_out_of_range_options_are_refused_in_one_line(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(["experiment", *argv])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {argv[1]}" in err and "Traceback" not in err
    assert all(len(line) <= 80 for line in err.splitlines())


def test_a_value_error_inside_a_study_is_one_line_exit_2(capsys, tmp_path):
    bad = tmp_path / "cifar.npz"
    bad.write_bytes(b"not a zip archive")
    assert main(["experiment", "cifar", "--npz", str(bad), "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("minicnn experiment cifar:") and str(bad.name) in err and "Traceback" not in err


def test_bench_repeats_must_be_positive(capsys):
    with pytest.raises(SystemExit) as e:
        main(["bench", "conv", "--repeats", "0"])
    assert e.value.code == 2 and "argument --repeats" in capsys.readouterr().err


def test_a_closed_pipe_is_not_an_error():
    """`minicnn summary lenet5 | head -1`: the reader leaves early; no traceback, no Errno 32."""
    import subprocess
    import sys

    pipe = subprocess.Popen([sys.executable, "-m", "minicnn", "summary", "lenet5"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    pipe.stdout.close()  # the reader is gone before the first line
    with pipe.stderr:  # closed when read (an open pipe left to the garbage collector is a ResourceWarning)
        err = pipe.stderr.read().decode()
    assert pipe.wait(timeout=60) == 0 and err == "", err


def test_experiment_help_fits_80_columns_and_never_says_default_none(capsys):
    """Every study's --help: no line past 80 columns, no "(default: None)" or "(default: False)" noise."""
    import pytest

    from minicnn.cli import main
    from minicnn.commands.experiment import _experiments

    for name, _ in _experiments():
        with pytest.raises(SystemExit):
            main(["experiment", name, "--help"])
        text = capsys.readouterr().out
        assert "default: None" not in text and "default: False" not in text, name
        assert max(len(line) for line in text.splitlines()) <= 80, name
