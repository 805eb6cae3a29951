"""Hostile probes of the `minicnn` command line and library (issue 26's kinds), run on the code in this
checkout. Not collected by pytest (no test_ prefix): run it by hand, it takes a few minutes.

    MINICNN_DATA=/work/shared/datasets python tests/probes/hostile.py [--only WORD] [--list]

Every probe is a command (a subprocess, with a timeout) or a library call, and each outcome is sorted as
    correct      did what was asked (an accepted, valid request)
    clear error  refused, or failed, with a one-line reason and no traceback (exit 1 or 2)
    traceback    a Python traceback reached the user (or a raw exception in a library call)
    silent wrong accepted a request that should be refused, or printed something wrong (exit 0)
    data loss    a file that was not the run's own was replaced, written through, or left broken
    hang         still running at the timeout
Exit status 0 when no probe is a traceback, silent wrong, data loss or hang; else 1.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import stat
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
BAD_NUMBERS = ("-1", "0", "nan", "inf", "1e30", "99999999999999999999", "", "abc")
TIMEOUT_S = 120
GOOD_KINDS = ("correct", "clear error")


@dataclass
class Probe:
    name: str
    argv: list[str] | None = None  # a command line after `minicnn`
    expect: str = "refuse"  # "refuse", "ok" or "either"
    check: Callable[[], str | None] | None = None  # data loss test after the run: a reason or None
    call: Callable[[], object] | None = None  # a library probe instead of a command
    run: Callable[[], tuple[str, str]] | None = None  # a probe with its own driver -> (outcome, detail)
    timeout: float = TIMEOUT_S
    outcome: str = ""
    detail: str = field(default="")


def env(work: Path) -> dict:
    return {**os.environ, "MINICNN_CACHE_DIR": str(work / "cache"), "MPLBACKEND": "Agg",
            "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "default"}


def minicnn(work: Path, argv: list[str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "minicnn", *argv], capture_output=True, text=True,
                          env=env(work), cwd=work, timeout=timeout, stdin=subprocess.DEVNULL)


def classify(probe: Probe, work: Path) -> tuple[str, str]:
    if probe.run is not None:
        return probe.run()
    if probe.call is not None:
        return _classify_call(probe)
    try:
        r = minicnn(work, probe.argv, probe.timeout)
    except subprocess.TimeoutExpired:
        return "hang", f"no end after {probe.timeout:.0f} s"
    lost = probe.check() if probe.check else None
    err = r.stderr.strip()
    last = err.splitlines()[-1] if err else ""
    if lost:
        return "data loss", lost
    if "Traceback" in r.stderr:
        return "traceback", last
    if "\x1b" in r.stdout + r.stderr:
        return "silent wrong", "a raw escape character reached the terminal"
    if r.returncode == 0:
        return ("silent wrong", "accepted (exit 0)") if probe.expect == "refuse" else ("correct", "")
    if r.returncode in (1, 2) and err:
        return ("clear error", " ".join(err.split())[:150]) if probe.expect != "ok" else \
            ("silent wrong", f"refused a valid request: {' '.join(err.split())[:120]}")
    return "traceback", f"exit {r.returncode} with stderr {last!r}"  # killed, or no reason given


def _classify_call(probe: Probe) -> tuple[str, str]:
    import warnings

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        try:
            value = probe.call()
        except (ValueError, TypeError, FileExistsError) as e:
            if probe.expect == "ok":
                return "silent wrong", f"refused: {type(e).__name__}: {e}"
            return "clear error", f"{type(e).__name__}: {str(e)[:140]}"
        except Exception as e:  # an AttributeError, IndexError, ...: a raw error for the user to decode
            return "traceback", f"{type(e).__name__}: {str(e)[:140]}"
    lost = probe.check() if probe.check else None
    if lost:
        return "data loss", lost
    if probe.expect == "refuse":
        return "silent wrong", f"accepted, returned {str(value)[:100]}"
    if seen:
        return "silent wrong", f"a warning: {seen[0].message}"
    return "correct", ""


# ---- fixtures: a tiny dataset, a trained checkpoint, its compressed file, an image -----------------

def tiny_npz(path: Path, size: int = 28, channels: int = 0, n: int = 64, **changes) -> Path:
    rng = np.random.default_rng(0)
    shape = (size, size) if not channels else (size, size, channels)
    arrays = {"x_train": rng.integers(0, 256, (n, *shape), np.uint8), "y_train": np.arange(n) % 10,
              "x_test": rng.integers(0, 256, (16, *shape), np.uint8), "y_test": np.arange(16) % 10, **changes}
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


def fixtures(work: Path) -> dict[str, Path]:
    f = {"npz": tiny_npz(work / "tiny.npz"), "cifar": tiny_npz(work / "cifar.npz", 32, 3)}
    r = minicnn(work, ["--no-tune", "train", "--dataset", str(f["npz"]), "--epochs", "1", "--no-progress",
                       "--out", str(work / "run")], 300)
    assert r.returncode == 0, r.stderr
    f["ckpt"] = work / "run" / "checkpoint.npz"
    r = minicnn(work, ["compress", str(f["ckpt"]), "--out", str(work / "model.fr.npz")], 120)
    assert r.returncode == 0, r.stderr
    f["fr"] = work / "model.fr.npz"
    np.save(work / "digit.npy", np.zeros((28, 28)))
    f["image"] = work / "digit.npy"
    return f


def fresh(work: Path, name: str) -> Path:
    """A new path in its own folder (every probe writes somewhere new)."""
    folder = Path(tempfile.mkdtemp(dir=work, prefix="p-"))
    return folder / name


# ---- 1. bad numbers on every command's options --------------------------------------------------------

def number_probes(work: Path, f: dict) -> list[Probe]:
    data = os.environ.get("MINICNN_DATA", "")
    commands = {
        "train": (["--no-tune", "train", "--dataset", str(f["npz"]), "--epochs", "1", "--no-progress"],
                  ["--epochs", "--batch-size", "--lr", "--momentum", "--weight-decay", "--label-smoothing",
                   "--warmup", "--width", "--shift", "--train-limit", "--val-size", "--early-stop", "--seed"],
                  lambda: ["--out", str(fresh(work, "run"))]),
        "demo": (["demo", "--steps", "5"], ["--steps", "--lr", "--seed"], lambda: []),
        "lr-find": (["--no-tune", "lr-find", "--dataset", str(f["npz"]), "--steps", "12"],
                    ["--steps", "--start-lr", "--end-lr", "--batch-size", "--width", "--momentum",
                     "--weight-decay", "--label-smoothing", "--seed"], lambda: ["--out", str(fresh(work, "c.png"))]),
        "compress": (["compress", str(f["ckpt"])], ["--keep"], lambda: ["--out", str(fresh(work, "m.fr.npz"))]),
        "summary": (["summary", "lenet5"], ["--num-classes", "--width", "--input"], lambda: []),
        "gradcheck": (["gradcheck", "relu"], ["--seed"], lambda: []),
        "downsampling": (["experiment", "downsampling", "--datasets", "mnist", "--num-images", "2",
                          "--data-dir", data], ["--num-images"], lambda: ["--out", str(fresh(work, "ds"))]),
        "downsampling_nets": (["--no-tune", "experiment", "downsampling_nets", "--datasets", "fashion-mnist",
                               "--fmnist-train", "64", "--fmnist-epochs", "1", "--seeds", "1", "--width", "0.0625"],
                              ["--width", "--seeds", "--fmnist-train", "--lr", "--batch-size"], lambda: []),
        "cifar": (["--no-tune", "experiment", "cifar", "--npz", str(f["cifar"]), "--epochs", "1", "--width",
                   "0.0625"], ["--epochs", "--lr", "--width", "--seed", "--batch-size"], lambda: []),
        "threads": (["summary", "lenet5"], ["--threads"], lambda: []),
    }
    probes = []
    for command, (base, options, extra) in commands.items():
        for option in options:
            for value in BAD_NUMBERS:
                if option == "--seed" and value == "0":
                    continue  # seed 0 is valid
                argv = _replace(base, option, value) + extra()
                if command == "threads":
                    argv = [option, value, *base]
                probes.append(Probe(f"number {command} {option} {value!r}", argv,
                                    expect="either" if _may_be_valid(option, value) else "refuse"))
    return probes


def _replace(base: list[str], option: str, value: str) -> list[str]:
    argv = list(base)
    if option in argv:
        argv[argv.index(option) + 1] = value
        return argv
    return [*argv, option, value]


def _may_be_valid(option: str, value: str) -> bool:
    """Values some options rightly accept: 0 momentum/decay/smoothing/warmup/val-size, a 1e30 or huge
    upper bound that the run then reports (diverged: exit 1), a 0 shift."""
    zero_ok = {"--momentum", "--weight-decay", "--label-smoothing", "--warmup", "--val-size", "--shift"}
    return value == "0" and option in zero_ok


# ---- 2. crafted dataset .npz files --------------------------------------------------------------------

def _dup_member(path: Path) -> Path:
    with zipfile.ZipFile(path, "a") as z:
        import io
        buf = io.BytesIO()
        np.save(buf, np.full(16, 3))
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Duplicate name": the point of the probe
            z.writestr("y_test.npy", buf.getvalue())
    return path


def _bomb(path: Path) -> Path:
    """A member whose zip directory claims 3 GB uncompressed (the data itself is small)."""
    tiny_npz(path)
    data = bytearray(path.read_bytes())
    end = data.rfind(b"PK\x05\x06")
    cd = struct.unpack_from("<L", data, end + 16)[0]
    struct.pack_into("<L", data, cd + 24, 3_000_000_000)  # uncompressed size of the first member
    path.write_bytes(bytes(data))
    return path


def dataset_probes(work: Path) -> list[Probe]:
    rng = np.random.default_rng(1)
    cases = {
        "float labels 1e30": {"y_train": np.r_[np.zeros(63), 1e30]},
        "nan labels": {"y_train": np.r_[np.zeros(63), np.nan]},
        "inf labels": {"y_test": np.r_[np.zeros(15), np.inf]},
        "fractional labels": {"y_train": np.full(64, 0.5)},
        "labels 10^9": {"y_train": np.r_[np.zeros(63, int), 10**9]},
        "uint64 max labels": {"y_train": np.r_[np.zeros(63, np.uint64), np.uint64(2**64 - 1)]},
        "negative labels": {"y_train": np.r_[np.zeros(63, int), -3]},
        "string labels": {"y_train": np.array(["a"] * 64)},
        "bool labels": {"y_train": np.ones(64, bool)},
        "complex images": {"x_train": np.ones((64, 28, 28), complex)},
        "nan images": {"x_train": np.full((64, 28, 28), np.nan)},
        "huge float images": {"x_train": np.full((64, 28, 28), 1e300)},
        "5-d images": {"x_train": np.zeros((64, 1, 1, 28, 28), np.uint8)},
        "empty train split": {"x_train": np.zeros((0, 28, 28), np.uint8), "y_train": np.zeros(0, int)},
        "empty test split": {"x_test": np.zeros((0, 28, 28), np.uint8), "y_test": np.zeros(0, int)},
        "labels of the wrong length": {"y_train": np.zeros(10, int)},
        "one-hot labels": {"y_train": np.eye(10)[np.arange(64) % 10]},
        "test labels beyond the class names": {"y_test": np.r_[np.zeros(15, int), 9],
                                               "class_names": np.array(list("abcdefgh"))},
        "class names shorter than labels": {"class_names": np.array(["a", "b"])},
        "train/test shapes differ": {"x_test": rng.integers(0, 256, (16, 20, 20), np.uint8)},
        "1x1 images": {"x_train": np.zeros((64, 1, 1), np.uint8), "x_test": np.zeros((16, 1, 1), np.uint8)},
        "missing y_test": {"y_test": None},
    }
    probes = []
    for name, changes in cases.items():
        path = tiny_npz(work / f"ds-{len(probes)}.npz", **changes)
        probes.append(_dataset_probe(work, f"dataset {name}", path))
    for name, make in {"object array (pickle)": lambda p: np.savez(p, x_train=np.array([None] * 64, object),
                                                                        y_train=np.zeros(64), x_test=np.zeros(1),
                                                                        y_test=np.zeros(1)),
                       "duplicate zip member": lambda p: _dup_member(tiny_npz(p)),
                       "zip bomb header": _bomb,
                       "truncated file": lambda p: p.write_bytes(tiny_npz(p).read_bytes()[:500]),
                       "not a zip": lambda p: p.write_bytes(b"hello"),
                       "a folder named .npz": lambda p: p.mkdir()}.items():
        path = work / f"ds-{len(probes)}.npz"
        make(path)
        probes.append(_dataset_probe(work, f"dataset {name}", path))
    return probes


def _dataset_probe(work: Path, name: str, path: Path) -> Probe:
    return Probe(name, ["--no-tune", "train", "--dataset", str(path), "--epochs", "1", "--no-progress",
                        "--out", str(fresh(work, "run"))])


# ---- 3. crafted .fr.npz and checkpoint files ------------------------------------------------------------

def model_file_probes(work: Path, f: dict) -> list[Probe]:
    from minicnn.files import read_npz

    probes = []
    for label, source in (("fr", f["fr"]), ("ckpt", f["ckpt"])):
        arrays = read_npz(source)
        variants = {}
        for key, value in arrays.items():
            if value.dtype.kind in "iu" and value.size:
                variants[f"{key} = 10^12"] = {**arrays, key: np.full_like(value, 10**12, dtype=np.int64)}
                variants[f"{key} = -5"] = {**arrays, key: np.full_like(value, -5, dtype=np.int64)}
            elif value.dtype.kind in "US" and value.size:
                variants[f"{key} = garbage text"] = {**arrays, key: np.array("{not json \x1b[2J")}
            elif value.dtype.kind == "f" and value.size:
                variants[f"{key} = nan"] = {**arrays, key: np.full_like(value, np.nan)}
        if arrays:
            first = sorted(arrays)[0]
            variants[f"without {first}"] = {k: v for k, v in arrays.items() if k != first}
        for name, content in list(variants.items())[:14]:
            path = work / f"m-{len(probes)}.{'fr.npz' if label == 'fr' else 'npz'}"
            np.savez(path, **content)
            for command in (["evaluate", str(path), "--dataset", str(f["npz"]), "--png", str(fresh(work, "e.png"))],
                            ["summary", str(path)],
                            ["predict", str(path), str(f["image"])]):
                probes.append(Probe(f"model file {label} {name}: {command[0]}", command, expect="either"))
    return probes


# ---- 4. targets of every writing command ------------------------------------------------------------------

SENTINEL = b"someone else's file\n"


def _make_target(kind: str, path: Path) -> Callable[[], str | None]:
    """Put a `kind` at `path`; return the check that it survived."""
    outside = path.parent / "outside.bin"
    if kind == "existing file":
        path.write_bytes(SENTINEL)
        return lambda: None if path.read_bytes() == SENTINEL else f"{path.name} was replaced"
    if kind == "link to a file":
        outside.write_bytes(SENTINEL)
        path.symlink_to(outside)
        return lambda: _link_fate(path, outside, SENTINEL)
    if kind == "dangling link":
        path.symlink_to(outside)
        return lambda: _link_fate(path, outside, None)
    if kind == "fifo":
        os.mkfifo(path)
        return lambda: None if stat.S_ISFIFO(os.lstat(path).st_mode) else "the FIFO was replaced"
    if kind == "device":
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # a copy of /dev/null's device numbers
        return lambda: None if stat.S_ISCHR(os.lstat(path).st_mode) else "the device was replaced"
    if kind == "folder":
        path.mkdir()
        (path / "keep").write_bytes(SENTINEL)
        return lambda: None if (path / "keep").read_bytes() == SENTINEL else "the folder's file was lost"
    raise ValueError(kind)


def _link_fate(path: Path, outside: Path, content: bytes | None) -> str | None:
    """What became of the link `path` to `outside` (which held `content`, None: did not exist)."""
    now = outside.read_bytes() if outside.exists() else None
    if now != content:
        return "written through the link (its target changed)"
    if not path.is_symlink():
        return "the link was replaced by a file" if path.exists() else "the link was deleted"
    return None


TARGET_KINDS = ("existing file", "link to a file", "dangling link", "fifo", "device", "folder")


def target_probes(work: Path, f: dict) -> list[Probe]:
    data = os.environ.get("MINICNN_DATA", "")
    writers = {  # name: (file name, argv builder given the target path, does the target name a folder?)
        "compress --out": ("m.fr.npz", lambda t: ["compress", str(f["ckpt"]), "--out", str(t)]),
        "demo --plot": ("d.png", lambda t: ["demo", "--steps", "5", "--plot", str(t)]),
        "evaluate --png": ("e.png", lambda t: ["evaluate", str(f["ckpt"]), "--dataset", str(f["npz"]), "--png", str(t)]),
        "lr-find --out": ("c.png", lambda t: ["--no-tune", "lr-find", "--dataset", str(f["npz"]), "--steps", "12",
                                              "--out", str(t)]),
        "export --onnx": ("m.onnx", lambda t: ["export", str(f["ckpt"]), "--onnx", str(t)]),
        "show --out (a file in it)": ("filters_0.png", lambda t: ["show", str(f["ckpt"]), "--out", str(t.parent)]),
        "train --out (a file in it)": ("metrics.json", lambda t: ["--no-tune", "train", "--dataset", str(f["npz"]),
                                                                  "--epochs", "1", "--no-progress", "--out",
                                                                  str(t.parent)]),
        "experiment downsampling --out (a file in it)": (
            "downsampling.png", lambda t: ["experiment", "downsampling", "--datasets", "mnist", "--num-images", "2",
                                           "--data-dir", data, "--out", str(t.parent)]),
        "experiment downsampling_nets --out (a file in it)": (
            "results.json", lambda t: ["--no-tune", "experiment", "downsampling_nets", "--datasets", "fashion-mnist",
                                       "--fmnist-train", "64", "--fmnist-epochs", "1", "--seeds", "1", "--width",
                                       "0.0625", "--out", str(t.parent)]),
    }
    probes = []
    for writer, (name, argv) in writers.items():
        for kind in TARGET_KINDS:
            for overwrite in ((False,) if kind == "existing file" else (True,)):
                target = fresh(work, name)
                check = _make_target(kind, target)
                command = argv(target) + (["--overwrite"] if overwrite else [])
                probes.append(Probe(f"target {writer}: {kind}{' --overwrite' if overwrite else ''}", command,
                                    check=check, timeout=60,  # an existing file: refused or a new name
                                    expect="either" if kind == "existing file" else "refuse"))
    return probes


# ---- 5. escape sequences, concurrent runs, signals -------------------------------------------------------

ESCAPE = "\x1b]0;pwned\x07\x1b[2J"


def escape_probes(work: Path, f: dict) -> list[Probe]:
    path = tiny_npz(work / "escape.npz", class_names=np.array([f"{ESCAPE}{i}" for i in range(10)]))
    run = work / "escape-run"
    probes = [Probe("escape: train on class names with escapes", ["--no-tune", "train", "--dataset", str(path),
                                                                  "--epochs", "1", "--no-progress", "--out", str(run)],
                    expect="ok")]
    ckpt = str(run / "checkpoint.npz")
    probes += [Probe("escape: evaluate prints the class names", ["evaluate", ckpt, "--dataset", str(path), "--png",
                                                                 str(fresh(work, "e.png"))], expect="ok"),
               Probe("escape: predict prints a class name", ["predict", ckpt, str(f["image"])], expect="ok"),
               Probe("escape: summary of the checkpoint", ["summary", ckpt], expect="ok"),
               Probe("escape: a file name with escapes", ["summary", str(work / f"{ESCAPE}.npz")])]
    return probes


def concurrent_probes(work: Path, f: dict) -> list[Probe]:
    def two_runs(overwrite: bool) -> tuple[str, str]:
        out = fresh(work, "run").parent
        argv = [sys.executable, "-m", "minicnn", "--no-tune", "train", "--dataset", str(f["npz"]), "--epochs", "3",
                "--no-progress", "--out", str(out)] + (["--overwrite"] if overwrite else [])
        procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(work),
                                  cwd=work) for _ in range(2)]
        results = [p.communicate(timeout=300) + (p.returncode,) for p in procs]
        codes = sorted(r[2] for r in results)
        if any("Traceback" in r[1] for r in results):
            return "traceback", "a traceback"
        if codes == [0, 2] and any("in use" in r[1] for r in results):
            return "clear error", "the second run was refused: the folder is in use"
        if codes == [0, 0]:
            return "data loss", "both runs said they saved into one folder"
        return "silent wrong", f"exit codes {codes}"
    return [Probe("concurrent: two train into one --out", run=lambda: two_runs(False)),
            Probe("concurrent: two train --overwrite into one --out", run=lambda: two_runs(True))]


def signal_probes(work: Path, f: dict) -> list[Probe]:
    def mid_run(sig: int, expected: int, argv: list[str], out: Path | None) -> tuple[str, str]:
        p = subprocess.Popen([sys.executable, "-m", "minicnn", *argv], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env(work), cwd=work)
        time.sleep(4.0)  # imports done, the run under way
        p.send_signal(sig)
        if sig == signal.SIGINT:
            time.sleep(0.5)
            if p.poll() is None:
                p.send_signal(sig)  # a second Ctrl-C stops at once
        try:
            _, err = p.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            p.kill()
            return "hang", f"no end after {signal.Signals(sig).name}"
        if "Traceback" in err:
            return "traceback", err.strip().splitlines()[-1]
        if out is not None and (out / "run.lock").exists():
            return "data loss", "run.lock left behind (the next run reports a stale lock)"
        if out is not None and list(out.glob("*.tmp")):
            return "data loss", "a temporary file left behind"
        if p.returncode != expected:
            return "silent wrong", f"exit {p.returncode}, expected {expected}"
        return "correct", f"exit {p.returncode}"

    def train(out: Path) -> list[str]:
        return ["--no-tune", "train", "--dataset", str(f["npz"]), "--epochs", "10000", "--no-progress",
                "--batch-size", "16", "--out", str(out)]

    probes = []
    for sig, code in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
        name = signal.Signals(sig).name
        out = fresh(work, "run").parent
        probes.append(Probe(f"signal {name} mid train", run=lambda s=sig, c=code, o=out: mid_run(s, c, train(o), o)))
        probes.append(Probe(f"signal {name} mid demo", run=lambda s=sig, c=code: mid_run(
            s, c, ["demo", "--steps", "1000000"], None)))
        probes.append(Probe(f"signal {name} mid lr-find", run=lambda s=sig, c=code: mid_run(
            s, c, ["--no-tune", "lr-find", "--dataset", str(f["npz"]), "--steps", "10000", "--batch-size", "1",
                   "--out", str(fresh(work, "c.png"))], None)))
    return probes


# ---- 6. library edges -------------------------------------------------------------------------------------

def library_probes(work: Path) -> list[Probe]:
    from minicnn import files, optim
    from minicnn.data import readers
    from minicnn.layers import Linear

    def sgd_twice():
        layer = Linear(2, 2)
        p = layer.parameters()[0]
        return optim.SGD([p, p], lr=0.1)

    def no_grad():
        layer = Linear(2, 2)
        p = layer.parameters()[0]
        p.grad = None
        before = p.data.copy()
        optim.SGD([p], lr=0.1).step()
        return "skipped" if np.array_equal(before, p.data) else (_ for _ in ()).throw(AssertionError("changed"))

    fifo = work / "lib.fifo"
    os.mkfifo(fifo)
    link = work / "lib.link"
    link.symlink_to(work / "lib-target")
    folder = work / "lib-folder"
    folder.mkdir()
    existing = work / "lib-existing"
    existing.write_bytes(SENTINEL)
    return [
        Probe("library SGD([p, p])", call=sgd_twice),
        Probe("library SGD([ndarray])", call=lambda: optim.SGD([np.ones(3)], lr=0.1)),
        Probe("library parameter without a gradient is skipped", call=no_grad, expect="ok"),
        Probe("library check_labels(1e30)", call=lambda: readers.check_labels(np.array([1e30]), 1, "y")),
        Probe("library check_labels(nan)", call=lambda: readers.check_labels(np.array([np.nan]), 1, "y")),
        Probe("library check_labels(uint64 max)", call=lambda: readers.check_labels(
            np.array([2**64 - 1], np.uint64), 1, "y")),
        Probe("library write_atomic onto a FIFO", call=lambda: files.write_atomic(fifo, lambda t: t.write_text("x"),
                                                                                  overwrite=True)),
        Probe("library write_atomic onto a link", call=lambda: files.write_atomic(link, lambda t: t.write_text("x"),
                                                                                  overwrite=True),
              check=lambda: None if not (work / "lib-target").exists() else "written through"),
        Probe("library write_atomic onto a folder", call=lambda: files.write_atomic(
            folder, lambda t: t.write_text("x"), overwrite=True)),
        Probe("library write_atomic onto another's file", call=lambda: files.write_atomic(
            existing, lambda t: t.write_text("x")),
              check=lambda: None if existing.read_bytes() == SENTINEL else "replaced"),
        Probe("library write_atomic to ''", call=lambda: files.write_atomic("", lambda t: t.write_text("x"))),
        Probe("library read_npz of a FIFO", call=lambda: files.read_npz(fifo)),
        Probe("library read_npz zip bomb header", call=lambda: files.read_npz(_bomb(work / "lib-bomb.npz"))),
        Probe("library read_npz duplicate member", call=lambda: files.read_npz(_dup_member(tiny_npz(
            work / "lib-dup.npz")))),
    ]


# ---- the run ------------------------------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=None, help="run only probes whose name contains this")
    parser.add_argument("--list", action="store_true", help="list the probes, run none")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    work = Path(tempfile.mkdtemp(prefix="minicnn-probes-"))
    try:
        f = fixtures(work)
        probes = (number_probes(work, f) + dataset_probes(work) + model_file_probes(work, f)
                  + target_probes(work, f) + escape_probes(work, f) + concurrent_probes(work, f)
                  + signal_probes(work, f) + library_probes(work))
        if args.only:
            probes = [p for p in probes if args.only in p.name]
        if args.list:
            print("\n".join(p.name for p in probes))
            return 0
        started = time.monotonic()
        for i, probe in enumerate(probes, 1):
            probe.outcome, probe.detail = classify(probe, work)
            mark = "  " if probe.outcome in GOOD_KINDS else "!!"
            print(f"{mark} {i:>3} {probe.outcome:<12} {probe.name}" + (f"\n         {probe.detail}"
                  if probe.outcome not in GOOD_KINDS else ""), flush=True)
        counts = Counter(p.outcome for p in probes)
        print(f"\n{len(probes)} probes in {time.monotonic() - started:.0f} s: "
              + ", ".join(f"{counts[k]} {k}" for k in ("correct", "clear error", "traceback", "silent wrong",
                                                        "data loss", "hang")))
        (work / "results.json").write_text(json.dumps([p.__dict__ | {"check": None, "call": None, "run": None}
                                                       for p in probes], indent=1, default=str))
        return 0 if all(p.outcome in GOOD_KINDS for p in probes) else 1
    finally:
        if args.keep:
            print(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
