"""Issue 26, the write rule in lr-find and the downsampling experiments: nothing a run did not create is
replaced without --overwrite (a default name moves on, with a note), and a folder, device or symbolic
link at an output's name is refused before any work."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from minicnn.app.lr_find import LRFindResult, plot_lr_find
from minicnn.cli import main

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def tiny(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "d.npz"
    np.savez(path, x_train=rng.integers(0, 256, (64, 28, 28), np.uint8), y_train=np.arange(64) % 10,
             x_test=rng.integers(0, 256, (16, 28, 28), np.uint8), y_test=np.arange(16) % 10)
    return path


def _lr_find(tiny, *options):
    return main(["--no-tune", "lr-find", "--dataset", str(tiny), "--steps", "12", "--batch-size", "32", *options])


# -- lr-find -------------------------------------------------------------------------------------------

def test_lr_find_refuses_a_symbolic_link_even_a_dangling_one(tiny, tmp_path, capsys):
    """Before: `--out LINK` to a missing file passed the exists() check and savefig wrote through it."""
    (tmp_path / "curve.png").symlink_to(tmp_path / "elsewhere.png")
    assert _lr_find(tiny, "--out", str(tmp_path / "curve.png"), "--overwrite") == 2
    err = capsys.readouterr().err
    assert "a symbolic link" in " ".join(err.split()) and "Traceback" not in err
    assert not (tmp_path / "elsewhere.png").exists()


def test_lr_find_refuses_a_device_and_a_folder_before_the_sweep(tiny, tmp_path, capsys):
    """Before: --overwrite wrote the curve into /dev/null (exit 0, "curve in /dev/null"), and a folder
    failed only after the whole sweep (IsADirectoryError, exit 1)."""
    assert _lr_find(tiny, "--out", os.devnull, "--overwrite") == 2
    assert "is a device" in capsys.readouterr().err
    (tmp_path / "dir.png").mkdir()
    assert _lr_find(tiny, "--out", str(tmp_path / "dir.png"), "--overwrite") == 2
    captured = capsys.readouterr()
    assert "is a folder" in " ".join(captured.err.split()) and "learning rate" not in captured.out  # refused before the sweep


def test_lr_find_default_name_moves_on_and_says_so(tiny, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lr_find.png").symlink_to(tmp_path / "missing")  # a dangling link is "something there" too
    (tmp_path / "lr_find-2.png").write_bytes(b"earlier")
    assert _lr_find(tiny) == 0
    out = capsys.readouterr().out
    assert "note: lr_find.png exists (kept); this curve goes to lr_find-3.png" in out
    assert (tmp_path / "lr_find-3.png").read_bytes()[:8] == PNG
    assert (tmp_path / "lr_find-2.png").read_bytes() == b"earlier" and not (tmp_path / "missing").exists()
    assert _lr_find(tiny, "--out", str(tmp_path / "named")) == 0  # no suffix: .png added
    assert (tmp_path / "named.png").read_bytes()[:8] == PNG


def test_a_name_without_suffix_that_exists_is_judged_as_given(tiny, tmp_path, capsys):
    """Before: `--out /dev/null` became /dev/null.png (a new file in /dev); `demo --plot` did the same."""
    (tmp_path / "folder").mkdir()
    assert _lr_find(tiny, "--out", str(tmp_path / "folder"), "--overwrite") == 2
    assert main(["demo", "--steps", "1", "--plot", str(tmp_path / "folder"), "--overwrite"]) == 2
    assert " ".join(capsys.readouterr().err.split()).count("is a folder") == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.npz", "folder"]


def test_plot_lr_find_keeps_an_existing_file_unless_told(tmp_path):
    """Before: the library's plot_lr_find replaced any file at `path` (fig.savefig)."""
    lrs = np.geomspace(1e-4, 1, 20)
    result = LRFindResult(lrs, np.linspace(2, 1, 20), np.linspace(2, 1, 20), None, "done")
    path = tmp_path / "c.png"
    path.write_bytes(b"earlier")
    with pytest.raises(FileExistsError):
        plot_lr_find(result, path)
    assert path.read_bytes() == b"earlier"
    plot_lr_find(result, path, overwrite=True)
    assert path.read_bytes()[:8] == PNG
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.png"]  # no temporary file left


# -- experiment downsampling ---------------------------------------------------------------------------

def _downsampling(data_dir, *options):
    return main(["experiment", "downsampling", "--data-dir", str(data_dir), "--datasets", "mnist",
                 "--num-images", "2", *options])


def test_downsampling_default_folder_never_replaces_an_earlier_run(data_dir, tmp_path, capsys, monkeypatch):
    """Before: the default runs/downsampling was written over, whatever it held."""
    monkeypatch.chdir(tmp_path)
    earlier = tmp_path / "runs" / "downsampling"
    earlier.mkdir(parents=True)
    (earlier / "downsampling.csv").write_text("earlier run\n")
    assert _downsampling(data_dir) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "note: runs/downsampling holds an earlier run (kept); this one goes to runs/downsampling-2" in out
    assert (earlier / "downsampling.csv").read_text() == "earlier run\n"
    assert sorted(p.name for p in earlier.iterdir()) == ["downsampling.csv"]
    new = tmp_path / "runs" / "downsampling-2"
    assert sorted(p.name for p in new.iterdir()) == ["downsampling.csv", "downsampling.png", "downsampling_table.txt"]
    assert (new / "downsampling.png").read_bytes()[:8] == PNG


def test_downsampling_given_out_with_an_earlier_run_needs_overwrite(data_dir, tmp_path, capsys):
    (tmp_path / "downsampling_table.txt").write_text("earlier\n")
    assert _downsampling(data_dir, "--out", str(tmp_path)) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "holds an earlier run (downsampling_table.txt)" in err and "--overwrite" in err
    assert (tmp_path / "downsampling_table.txt").read_text() == "earlier\n"
    assert _downsampling(data_dir, "--out", str(tmp_path), "--overwrite") == 0
    assert "max pool 2x2" in (tmp_path / "downsampling_table.txt").read_text()


def test_downsampling_refuses_a_link_or_a_folder_at_an_output_name(data_dir, tmp_path, capsys):
    """Before: --out's downsampling.png as a link was written through (to the link's target)."""
    (tmp_path / "downsampling.png").symlink_to(tmp_path / "target.png")
    assert _downsampling(data_dir, "--out", str(tmp_path), "--overwrite") == 2
    assert "a symbolic link" in " ".join(capsys.readouterr().err.split())
    assert not (tmp_path / "target.png").exists()
    (tmp_path / "file").write_text("x")
    assert _downsampling(data_dir, "--out", str(tmp_path / "file")) == 2
    assert "is not a folder" in " ".join(capsys.readouterr().err.split())


# -- experiment downsampling_nets ----------------------------------------------------------------------

def _nets(*options):
    return main(["--no-tune", "experiment", "downsampling_nets", "--datasets", "fashion-mnist", "--fmnist-train",
                 "64", "--fmnist-epochs", "1", "--seeds", "1", "--width", "0.0625", *options])


def test_downsampling_nets_keeps_an_earlier_results_file(data_dir, tmp_path, capsys):
    """Before: results.json was replaced after the whole training, without a word."""
    (tmp_path / "results.json").write_text("[]")
    assert _nets("--out", str(tmp_path)) == 2
    captured = capsys.readouterr()
    assert "holds an earlier results.json" in " ".join(captured.err.split()) and "test" not in captured.out
    assert (tmp_path / "results.json").read_text() == "[]"
    assert _nets("--out", str(tmp_path), "--overwrite") == 0
    rows = json.loads((tmp_path / "results.json").read_text())
    assert {r["downsampling"] for r in rows} == {"maxpool", "stride", "slicesamp"}


def test_downsampling_nets_refuses_a_link_at_results_json(tmp_path, capsys):
    (tmp_path / "results.json").symlink_to(tmp_path / "target.json")
    assert _nets("--out", str(tmp_path), "--overwrite") == 2
    assert "a symbolic link" in " ".join(capsys.readouterr().err.split())
    assert not (tmp_path / "target.json").exists()
