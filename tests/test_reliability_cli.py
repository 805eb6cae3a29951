"""Issue 13 probes at the command line: every mistake a user can make ends in one clear message on
stderr (80 columns, no traceback) with the documented exit code (0 ok, 1 failed run or check, 2 bad
input), and no command destroys an earlier result.

Findings: 1 thread counts, 2 lost work, 3 damaged checkpoints, 4 predict, 5 resume, 6 NaN
checkpoint, 7 unwritable --out, 8 option ranges, 10 errors on stderr. Commands run in-process
(`minicnn.cli.main`, fast) except where the environment matters (thread variables, `python -m`).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from contextlib import chdir, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import numpy as np
import pytest

from minicnn.cli import main

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ("train", "--epochs", 1, "--batch-size", 32, "--no-progress")


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


def cli(*args, cwd=None) -> Ran:
    """`minicnn ARGS` in this process; an exception escaping `main` fails the test (= a traceback)."""
    out, err = io.StringIO(), io.StringIO()
    env = {k: v for k, v in os.environ.items() if k != "MINICNN_DATA"}
    with mock.patch.dict(os.environ, env, clear=True), chdir(cwd or os.getcwd()), \
            redirect_stdout(out), redirect_stderr(err):
        try:
            code = main([str(a) for a in args])
        except SystemExit as e:  # argparse's own errors
            code = e.code
    return Ran(code, out.getvalue(), err.getvalue())


def cli_process(*args, env_extra=None) -> Ran:
    """`python -m minicnn ARGS` in a fresh process (thread variables are read at start-up)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env_extra or {})}
    env.pop("MINICNN_DATA", None)
    r = subprocess.run([sys.executable, "-m", "minicnn", *map(str, args)], check=False, env=env,
                       capture_output=True, text=True, timeout=120)
    assert "Traceback" not in r.stderr + r.stdout, r.stderr[-2000:]
    return Ran(r.returncode, r.stdout, r.stderr)


def expect_error(r: Ran, code: int, *words: str) -> None:
    assert r.returncode == code, (r.returncode, r.stdout[-500:], r.stderr[-1000:])
    stderr = " ".join(r.stderr.split()).lower()  # as read, across the wrapped lines
    for w in words:
        assert w.lower() in stderr, (w, r.stderr)
        assert w.lower() not in r.stdout.lower(), (w, r.stdout)
    assert all(len(line) <= 80 for line in r.stderr.splitlines()), r.stderr


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (96, 28, 28), dtype=np.uint8)
    y = rng.integers(0, 10, 96)
    np.savez(d / "tiny.npz", x_train=x[:64], y_train=y[:64], x_test=x[64:], y_test=y[64:])
    np.savez(d / "tiny2.npz", x_train=x[32:], y_train=y[32:], x_test=x[:32], y_test=y[:32])
    r = cli(*TRAIN, "--dataset", d / "tiny.npz", "--out", d / "run")
    assert r.returncode == 0, r.stderr
    return d


# ---- 1. threads: validated once, before anything computes with them ---------------------------------

@pytest.mark.parametrize("how", ["flag", "env", "env_text"])
def test_bad_thread_counts(work, how):
    if how == "flag":
        r = cli_process("--threads", -1, *TRAIN, "--dataset", work / "tiny.npz", "--out", work / "t1")
    else:
        r = cli_process(*TRAIN, "--dataset", work / "tiny.npz", "--out", work / f"t-{how}",
                        env_extra={"OPENBLAS_NUM_THREADS": "-1" if how == "env" else "abc"})
    expect_error(r, 2, "thread")
    assert not (work / f"t-{how}").exists() and not (work / "t1").exists()


def test_help_survives_a_bad_thread_variable():
    r = cli_process("--help", env_extra={"OPENBLAS_NUM_THREADS": "abc"})
    assert r.returncode == 0 and "exit codes" in r.stdout


# ---- 2. lost work --------------------------------------------------------------------------------------

def test_rerun_into_a_finished_run_folder_is_refused_and_keeps_it(work):
    files = [work / "run" / "checkpoint.npz", work / "run" / "metrics.json"]
    before = [f.read_bytes() for f in files]
    r = cli(*TRAIN, "--dataset", work / "tiny.npz", "--out", work / "run", "--seed", 1)
    expect_error(r, 2, "--resume", "--overwrite", str(work / "run"))
    assert [f.read_bytes() for f in files] == before


def test_rerun_with_the_default_folder_gets_a_new_one(work):
    first = cli(*TRAIN, "--dataset", work / "tiny.npz", cwd=work)
    again = cli(*TRAIN, "--dataset", work / "tiny.npz", cwd=work)
    assert first.returncode == 0 and again.returncode == 0, again.stderr
    assert "runs/tiny-lenet5-seed0-2" in again.stdout
    assert (work / "runs" / "tiny-lenet5-seed0" / "checkpoint.npz").is_file()
    assert (work / "runs" / "tiny-lenet5-seed0-2" / "checkpoint.npz").is_file()


def test_overwrite_replaces_the_run(work):
    assert cli(*TRAIN, "--dataset", work / "tiny.npz", "--out", work / "over").returncode == 0
    r = cli(*TRAIN, "--dataset", work / "tiny.npz", "--out", work / "over", "--overwrite", "--seed", 3)
    assert r.returncode == 0, r.stderr
    from minicnn.app.checkpoint import load_checkpoint

    assert load_checkpoint(work / "over" / "checkpoint.npz").meta["seed"] == 3
    expect_error(cli(*TRAIN, "--dataset", work / "tiny.npz", "--out", work / "over", "--overwrite", "--resume"),
                 2, "--resume", "--overwrite")


def test_compress_onto_its_own_input_is_refused(work):
    ckpt = work / "run" / "checkpoint.npz"
    before = ckpt.read_bytes()
    expect_error(cli("compress", ckpt, "--out", ckpt), 2, "same file")
    expect_error(cli("compress", ckpt, "--out", work / "run" / "." / "checkpoint.npz"), 2, "same file")
    assert ckpt.read_bytes() == before


def test_orphaned_tmp_files_are_removed(work):
    orphan = work / "run" / "checkpoint.npz.x1y2.tmp"
    orphan.write_bytes(b"half a checkpoint")
    other = work / "run" / "notes.tmp"
    other.write_text("the user's own file")
    r = cli(*TRAIN, "--dataset", work / "tiny.npz", "--out", work / "run", "--resume", "--epochs", 2)
    assert r.returncode == 0, r.stderr
    assert not orphan.exists() and other.exists()
    assert "removed 1 unfinished temporary file" in r.stdout


# ---- 3. damaged checkpoint / compressed file -----------------------------------------------------------

def _damaged(work, kind: str) -> Path:
    src = (work / "run" / "checkpoint.npz").read_bytes()
    out = work / f"damaged-{kind}.npz"
    if kind == "truncated":
        out.write_bytes(src[: len(src) // 2])
    elif kind == "bitflip":
        raw = bytearray(src)
        raw[len(raw) // 3] ^= 0x04
        out.write_bytes(bytes(raw))
    else:
        with zipfile.ZipFile(work / "run" / "checkpoint.npz") as z:
            arrays = {n[:-4]: np.load(z.open(n), allow_pickle=False) for n in z.namelist()}
        meta = json.loads(str(arrays["meta"]))
        if kind == "meta_not_json":
            arrays["meta"] = np.array("{not json")
        elif kind == "meta_list":
            arrays["meta"] = np.array("[1, 2]")
        elif kind == "meta_missing_model":
            meta.pop("model", None)
            arrays["meta"] = np.array(json.dumps(meta))
        elif kind == "huge_model_config":
            meta.setdefault("model_config", {})["width"] = 1e6
            arrays["meta"] = np.array(json.dumps(meta))
        elif kind == "meta_wrong_types":
            meta["input_shape"], meta["class_names"] = "28x28", 7
            arrays["meta"] = np.array(json.dumps(meta))
        np.savez(out, **arrays)
    return out


KINDS = ["truncated", "bitflip", "meta_not_json", "meta_list", "meta_missing_model", "huge_model_config",
         "meta_wrong_types"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("command", ["evaluate", "predict", "compress"])
def test_damaged_checkpoints_give_one_clear_error(work, kind, command):
    path = _damaged(work, kind)
    np.save(work / "img.npy", np.zeros((28, 28), np.float32))
    args = {"evaluate": (path, "--dataset", work / "tiny.npz"), "predict": (path, work / "img.npy"),
            "compress": (path, "--out", work / f"c-{kind}.fr.npz")}[command]
    expect_error(cli(command, *args), 2, str(path))
    assert not (work / f"c-{kind}.fr.npz").exists()


@pytest.mark.parametrize("kind", ["truncated", "bitflip"])
def test_damaged_compressed_file_gives_one_clear_error(work, kind):
    fr = work / "model.fr.npz"
    if not fr.exists():
        assert cli("compress", work / "run" / "checkpoint.npz", "--out", fr).returncode == 0
    raw = bytearray(fr.read_bytes())
    if kind == "truncated":
        raw = raw[: len(raw) * 2 // 3]
    else:
        raw[len(raw) // 2] ^= 0x10
    bad = work / f"damaged-{kind}.fr.npz"
    bad.write_bytes(bytes(raw))
    np.save(work / "img.npy", np.zeros((28, 28), np.float32))
    expect_error(cli("predict", bad, work / "img.npy"), 2, str(bad))


def test_damaged_resume_checkpoint_is_refused(work):
    run = work / "resume-damaged"
    assert cli(*TRAIN, "--dataset", work / "tiny.npz", "--out", run).returncode == 0
    good = (run / "checkpoint.npz").read_bytes()
    (run / "checkpoint.npz").write_bytes(good[:-100])
    expect_error(cli(*TRAIN, "--dataset", work / "tiny.npz", "--out", run, "--resume", "--epochs", 2),
                 2, str(run / "checkpoint.npz"))


def test_damaged_dataset_gives_one_clear_error(work):
    raw = (work / "tiny.npz").read_bytes()
    bad = work / "tiny-damaged.npz"
    bad.write_bytes(raw[: len(raw) // 2])
    expect_error(cli(*TRAIN, "--dataset", bad, "--out", work / "never"), 2, str(bad))
    assert not (work / "never").exists()


# ---- 4. predict ----------------------------------------------------------------------------------------

def test_predict_reports_bad_files_and_goes_on(work):
    from PIL import Image

    good = work / "digit.jpg"
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(good)
    fake = work / "fake.png"
    fake.write_text("not an image")
    nan = work / "nan.npy"
    np.save(nan, np.full((28, 28), np.nan, np.float32))
    r = cli("predict", work / "run" / "checkpoint.npz", fake, good, nan)
    assert r.returncode == 2
    assert str(good) in r.stdout and "%" in r.stdout and "nan%" not in r.stdout
    assert str(fake) in r.stderr and str(nan) in r.stderr and str(good) not in r.stderr


def test_predict_refuses_a_model_with_non_finite_output(work, tmp_path):
    from minicnn.app.checkpoint import load_checkpoint, save_checkpoint
    from minicnn.app.loading import load_model

    saved = load_checkpoint(work / "run" / "checkpoint.npz")
    model = load_model(work / "run" / "checkpoint.npz").model
    model.parameters()[0].data[...] = np.nan
    broken = tmp_path / "nan.npz"
    save_checkpoint(broken, model, None, {k: v for k, v in saved.meta.items() if k not in ("format", "engine_rng")})
    np.save(tmp_path / "img.npy", np.zeros((28, 28), np.float32))
    r = cli("predict", broken, tmp_path / "img.npy")
    expect_error(r, 1, "not finite")
    assert "nan%" not in r.stdout
    expect_error(cli("evaluate", broken, "--dataset", work / "tiny.npz"), 2, "NaN")


# ---- 5. resume -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("change", [("--train-limit", 32), ("--optimizer", "adam"), ("--lr", 0.5),
                                    ("--augment", "none"), ("--momentum", 0.5), ("--weight-decay", 0.0),
                                    ("--width", 0.5), ("--shift", 2), ("--val-size", 8), ("--schedule", "constant")])
def test_resume_refuses_a_changed_run(work, change):
    r = cli(*TRAIN, "--dataset", work / "tiny.npz", "--out", work / "run", "--resume", "--epochs", 5, *change)
    expect_error(r, 2, change[0])


def test_resume_refuses_another_dataset(work):
    r = cli(*TRAIN, "--dataset", work / "tiny2.npz", "--out", work / "run", "--resume", "--epochs", 5)
    expect_error(r, 2, "--dataset", "training images")


def test_resume_refuses_changed_contents_under_the_same_name(work, tmp_path):
    data = tmp_path / "d.npz"
    with np.load(work / "tiny.npz") as f:
        arrays = dict(f)
    np.savez(data, **arrays)
    assert cli(*TRAIN, "--dataset", data, "--out", tmp_path / "r").returncode == 0
    arrays["x_train"] = arrays["x_train"][::-1].copy()
    np.savez(data, **arrays)
    r = cli(*TRAIN, "--dataset", data, "--out", tmp_path / "r", "--resume", "--epochs", 2)
    expect_error(r, 2, "training images")


def test_resume_may_extend_the_epochs_but_not_shrink_them(work, tmp_path):
    run = tmp_path / "r"
    assert cli(*TRAIN, "--dataset", work / "tiny.npz", "--out", run, "--epochs", 2).returncode == 0
    expect_error(cli(*TRAIN, "--dataset", work / "tiny.npz", "--out", run, "--resume"), 2, "--epochs")
    r = cli(*TRAIN, "--dataset", work / "tiny.npz", "--out", run, "--resume", "--epochs", 3)
    assert r.returncode == 0 and "extended from 2 to 3 epochs" in r.stdout, r.stderr
    history = json.loads((run / "metrics.json").read_text())["history"]
    assert [row["epoch"] for row in history] == [1, 2, 3]


# ---- 6. NaN validation -------------------------------------------------------------------------------

# Expected: these runs diverge on purpose (a huge learning rate), so the forward pass overflows to inf/NaN
# in matmul before the loss check stops the run; NumPy's RuntimeWarning is that overflow, not a defect.
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning",
                            "ignore:invalid value encountered:RuntimeWarning")
def test_nan_validation_loss_is_not_a_good_checkpoint(work):
    """One step with lr 1e30 from a finite loss: weights ~1e29, validation logits overflow -> NaN loss.
    Before the fix: 'validation loss nan', checkpoint kept as good, evaluate reported 6.25% with rc 0."""
    r = cli("train", "--epochs", 1, "--batch-size", 64, "--lr", 1e30, "--schedule", "constant", "--no-progress",
            "--dataset", work / "tiny.npz", "--out", work / "nanrun")
    expect_error(r, 1, "no checkpoint was written")
    assert "nan" in r.stderr.lower()
    assert not (work / "nanrun" / "checkpoint.npz").exists()


# Expected: these runs diverge on purpose (a huge learning rate), so the forward pass overflows to inf/NaN
# in matmul before the loss check stops the run; NumPy's RuntimeWarning is that overflow, not a defect.
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning",
                            "ignore:invalid value encountered:RuntimeWarning")
def test_a_diverging_resume_keeps_the_last_good_checkpoint(work, tmp_path):
    run = tmp_path / "r"
    assert cli("train", "--epochs", 1, "--batch-size", 64, "--no-progress", "--schedule", "constant",
               "--dataset", work / "tiny.npz", "--out", run).returncode == 0
    good = (run / "checkpoint.npz").read_bytes()
    from minicnn.app.train import fit

    assert "warn" in fit.__kwdefaults__  # problems have their own channel (stderr at the command line)
    r = cli("train", "--epochs", 1, "--batch-size", 64, "--no-progress", "--schedule", "constant", "--lr", 1e30,
            "--dataset", work / "tiny.npz", "--out", run, "--overwrite")
    expect_error(r, 1, "stopped")
    assert "nan" in r.stderr.lower()
    assert not (run / "checkpoint.npz").exists() and good  # --overwrite replaced it; nothing broken saved


# ---- 7. writability ----------------------------------------------------------------------------------

@pytest.mark.parametrize("where", ["file", "under_file", "read_only"])
def test_unwritable_out_is_found_before_training(work, where):
    blocker = work / "blocker"
    blocker.write_text("x")
    locked = work / "locked"
    locked.mkdir(exist_ok=True)
    locked.chmod(0o500)
    try:
        if where == "read_only" and os.access(locked, os.W_OK):
            pytest.skip("running as a user who can write anywhere (root): a read-only folder cannot be made")
        out = {"file": blocker, "under_file": blocker / "run", "read_only": locked / "run"}[where]
        r = cli(*TRAIN, "--dataset", work / "tiny.npz", "--out", out)
    finally:
        locked.chmod(0o700)
    expect_error(r, 2, str(out))
    assert "epoch 1" not in r.stdout and "parameters" not in r.stdout


# ---- 8. option ranges ---------------------------------------------------------------------------------

@pytest.mark.parametrize("option, value", [
    ("--train-limit", -5), ("--train-limit", 0), ("--train-limit", 1000), ("--width", 0), ("--width", 0.01), ("--width", 100),
    ("--momentum", 2), ("--momentum", 1), ("--weight-decay", -1), ("--shift", 100), ("--shift", -1),
    ("--val-size", -1), ("--val-size", 64), ("--lr", -0.1), ("--lr", 0), ("--warmup", -5), ("--seed", -1),
    ("--epochs", 0), ("--batch-size", 0), ("--lr", "nan"), ("--lr", "inf"), ("--epochs", "two"),
])
def test_out_of_range_options(work, option, value):
    r = cli(*TRAIN, "--dataset", work / "tiny.npz", "--out", work / "ranges", option, value)
    expect_error(r, 2, option)
    assert len(r.stderr.strip().splitlines()) <= 3  # argparse usage line + one error line
    assert not (work / "ranges").exists()


@pytest.mark.parametrize("args", [("demo", "--steps", 0), ("demo", "--lr", -1), ("gradcheck", "Linear", "--seed", -1),
                                  ("summary", "lenet5", "--width", 0), ("summary", "lenet5", "--num-classes", 0)])
def test_other_commands_range_check_too(args):
    expect_error(cli(*args), 2, args[-2])


# ---- 10. errors on stderr, documented exit codes ------------------------------------------------------

@pytest.mark.parametrize("args", [
    ("summary", "nosuchmodel"), ("summary", "lenet5", "--input", "1,28"), ("gradcheck", "NoSuchLayer"),
    ("demo", "--steps", -1), ("compress", "missing.npz", "--out", "x.fr.npz"), ("evaluate", "missing.npz"),
    ("predict", "missing.npz", "x.png"), ("train", "--dataset", "nosuchset", "--no-download"),
])
def test_errors_go_to_stderr_with_code_2(work, args):
    r = cli(*args, cwd=work)
    assert r.returncode == 2 and r.stderr.strip() and "error" not in r.stdout.lower(), (r.stdout, r.stderr)
    assert all(len(line) <= 80 for line in r.stderr.splitlines()), r.stderr


def test_help_documents_the_exit_codes():
    r = cli("--help")
    assert r.returncode == 0
    for line in ("0  done", "1  a check or a run failed", "2  bad input"):
        assert line in r.stdout


def test_a_failed_gradient_check_exits_1(monkeypatch):
    import minicnn.gradcheck_cases as cases

    real = cases.run_case

    def failing(name, seed=0):
        report = real(name, seed=seed)
        report.deterministic = False
        return report

    monkeypatch.setattr(cases, "run_case", failing)
    assert cli("gradcheck", "Linear").returncode == 1
