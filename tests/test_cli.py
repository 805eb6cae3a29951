"""The command line: --help answers, gradcheck and demo run, errors are clear."""

import os
import subprocess
import sys

import pytest

from minicnn.cli import main


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
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


def test_thread_settings_come_from_the_option_else_the_environment_else_the_default(monkeypatch):
    from minicnn import cli

    for name in (*cli.THREAD_VARIABLES, cli.WORKERS_VARIABLE):
        monkeypatch.delenv(name, raising=False)
    assert cli._thread_settings(["train", "--epochs", "1"]) == ({"threads": cli.DEFAULT_THREADS}, None)
    assert cli._thread_settings(["--threads", "2", "demo"]) == ({"threads": 2}, None)
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "4")
    assert cli._thread_settings(["demo"]) == ({}, None)  # the user's own setting is kept
    monkeypatch.setenv("MINICNN_WORKERS", "0")
    settings, error = cli._thread_settings(["demo"])
    assert settings == {"threads": cli.DEFAULT_THREADS} and error.startswith("MINICNN_WORKERS: expected")


def _seen_by_a_command(monkeypatch, argv: list[str]) -> dict:
    """What `minicnn ARGV` (a `summary` command) sees of the runtime settings while it runs."""
    from minicnn import runtime, threads
    from minicnn.commands import summary

    seen = {}

    def run(args) -> int:
        seen.update(workers=threads.configured_workers(), blas=threads.configured_threads(),
                    openblas=[lib.get_num_threads() for lib in runtime.blas_libraries()],
                    kernels=runtime.kernels_enabled())
        return 0

    monkeypatch.setattr(summary, "run", run)
    assert main(argv) == 0
    return seen


def test_threads_option_configures_the_run_after_numpy_is_imported(monkeypatch):
    """`--threads 3`: three workers, each with a one-thread BLAS, set through runtime.configure in this
    process (NumPy is loaded) for the run only; afterwards the settings are as before."""
    from minicnn import runtime, threads

    def state():  # the settings (less the process-wide malloc one), workers, each OpenBLAS's threads
        counts = {lib.path: lib.get_num_threads() for lib in runtime.blas_libraries()}
        return runtime.settings().workers, runtime.settings().blas_threads, threads.configured_workers(), counts

    monkeypatch.delenv("MINICNN_WORKERS", raising=False)
    before = state()
    with runtime.temporarily(blas_threads=2):
        seen = _seen_by_a_command(monkeypatch, ["--threads", "3", "summary", "lenet5"])
        assert set(state()[3].values()) == {2}  # also a library the run loaded (SciPy's), as restored
    assert seen["workers"] == 3 and seen["blas"] == 1 and seen["kernels"]
    assert seen["openblas"] and set(seen["openblas"]) == {1}, "NumPy's OpenBLAS was not found or not set"
    after = state()
    assert after[:3] == before[:3] and {path: after[3][path] for path in before[3]} == before[3]


def test_plain_flag_turns_the_kernels_off_for_the_run(monkeypatch):
    from minicnn import runtime

    monkeypatch.delenv(runtime.PLAIN_VARIABLE, raising=False)
    assert not _seen_by_a_command(monkeypatch, ["--plain", "summary", "lenet5"])["kernels"]
    assert runtime.kernels_enabled()
    assert _seen_by_a_command(monkeypatch, ["summary", "lenet5"])["kernels"]


def test_help_describes_the_plain_switch_and_threads(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "--plain" in out and "MINICNN_PLAIN=1" in out and "minicnn.kernels" in out and "--threads N" in out


def test_threads_option_sets_blas_before_numpy_loads():
    """In a fresh process `minicnn --threads 3` writes the BLAS variables before NumPy is imported, so
    the BLAS starts with one thread; minicnn splits each batch into three parts."""
    code = ("import sys; from minicnn.cli import main; from minicnn.commands import summary; "
            "from minicnn import runtime, threads; assert 'numpy' not in sys.modules; "
            "summary.run = lambda args: print(threads.configured_workers(), "
            "[lib.get_num_threads() for lib in runtime.blas_libraries()]) or 0; "
            "sys.exit(main(['--threads', '3', 'summary', 'lenet5']))")
    from minicnn import runtime

    env = {k: v for k, v in os.environ.items() if k not in (*runtime.THREAD_VARIABLES, runtime.WORKERS_VARIABLE)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    workers, counts = done.stdout.split(maxsplit=1)
    assert workers == "3" and set(counts.strip("[]\n").split(", ")) == {"1"}  # NumPy's (and SciPy's) OpenBLAS


@pytest.mark.parametrize("argv", [
    ["train", "--seed", "99999999999999999999"], ["train", "--seed", "-1"], ["gradcheck", "relu", "--seed", "4294967296"],
    ["exercise", "check", "conv2d_dx", "--seed", "-1"], ["--threads", "99999999999999999999", "demo"],
])
def test_seeds_and_thread_counts_out_of_range_are_usage_errors(argv, capsys):
    """A seed NumPy cannot take (negative, or beyond 2**32 - 1) and a 20-digit thread count are refused
    before anything runs, in one line naming the option (once a traceback from NumPy's seeding)."""
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "--seed" in err or "--threads" in err
