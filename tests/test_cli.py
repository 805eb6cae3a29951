"""The command line: --help answers, gradcheck and demo run, errors are clear."""

import subprocess
import sys

from minicnn.cli import main


def test_help_lists_commands(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    for command in ("gradcheck", "demo", "experiment"):
        assert command in out


def test_python_dash_m_works():
    done = subprocess.run([sys.executable, "-m", "minicnn", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "usage: minicnn" in done.stdout


def test_gradcheck_command_prints_a_passing_table(capsys):
    assert main(["gradcheck", "Linear"]) == 0
    out = capsys.readouterr().out
    assert "gradcheck Linear" in out and "PASS" in out and "weight" in out


def test_gradcheck_command_lists_and_rejects_unknown(capsys):
    assert main(["gradcheck"]) == 0
    assert "BatchNorm2D" in capsys.readouterr().out
    assert main(["gradcheck", "Nope"]) == 2
    assert "unknown layer 'Nope'" in capsys.readouterr().err


def test_demo_learns_spiral(capsys, tmp_path):
    png = tmp_path / "spiral.png"
    assert main(["demo", "--steps", "400", "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    accuracy = float(out.split("training accuracy")[-1].split("%")[0])
    assert accuracy > 90
    assert png.stat().st_size > 1000


def test_thread_count_is_set_before_numpy_loads(monkeypatch):
    from minicnn import cli

    for name in (*cli.THREAD_VARIABLES, cli.WORKERS_VARIABLE):
        monkeypatch.delenv(name, raising=False)
    cli._set_threads(["train", "--epochs", "1"])
    assert all(cli.os.environ[name] == "1" for name in cli.THREAD_VARIABLES)
    assert cli.os.environ[cli.WORKERS_VARIABLE] == str(cli.DEFAULT_THREADS)
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "4")
    cli._set_threads(["demo"])  # the user's own setting is kept
    assert cli.os.environ["OPENBLAS_NUM_THREADS"] == "4"
    cli._set_threads(["--threads", "2", "demo"])  # two workers, each with a one-thread BLAS
    assert cli.os.environ[cli.WORKERS_VARIABLE] == "2" and cli.os.environ["OPENBLAS_NUM_THREADS"] == "1"
    done = subprocess.run([sys.executable, "-c", "import sys; from minicnn.cli import main; "
                           "sys.argv = ['minicnn', '--threads', '3']; main(); import os; "
                           "from minicnn.functional import conv_im2col as c; "
                           "print(os.environ['MINICNN_WORKERS'], c.WORKERS, c.BLAS_THREADS)"],
                          capture_output=True, text=True)
    assert done.stdout.strip().endswith("3 3 1")
