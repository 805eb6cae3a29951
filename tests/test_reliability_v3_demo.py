"""`minicnn demo` (issue: reliability v3): the plot path is checked before training, never replaces a
file it was not told to, says the name it wrote; a diverged run exits 1."""

from __future__ import annotations

from minicnn.cli import main


def test_a_name_without_suffix_gets_png_and_is_reported(tmp_path, capsys):
    assert main(["demo", "--steps", "5", "--plot", str(tmp_path / "regions")]) == 0
    assert (tmp_path / "regions.png").is_file() and not (tmp_path / "regions").exists()
    assert f"saved to {tmp_path / 'regions.png'}" in capsys.readouterr().out


def test_a_wrong_suffix_is_refused_before_training(tmp_path, capsys):
    assert main(["demo", "--steps", "5", "--plot", str(tmp_path / "x.xyz")]) == 2
    captured = capsys.readouterr()
    assert "expected a .png file" in captured.err and "step" not in captured.out


def test_an_existing_plot_is_kept_unless_overwrite(tmp_path, capsys):
    png = tmp_path / "old.png"
    png.write_bytes(b"earlier result")
    assert main(["demo", "--steps", "5", "--plot", str(png)]) == 2
    assert png.read_bytes() == b"earlier result" and "--overwrite" in capsys.readouterr().err
    assert main(["demo", "--steps", "5", "--plot", str(png), "--overwrite"]) == 0
    assert png.read_bytes().startswith(b"\x89PNG")


def test_a_fifo_or_folder_is_never_replaced(tmp_path, capsys):
    import os

    os.mkfifo(tmp_path / "pipe.png")
    assert main(["demo", "--steps", "5", "--plot", str(tmp_path / "pipe.png"), "--overwrite"]) == 2
    assert "not a regular file" in capsys.readouterr().err
    folder = tmp_path / "f.png"
    folder.mkdir()
    assert main(["demo", "--steps", "5", "--plot", str(folder), "--overwrite"]) == 2
    assert folder.is_dir() and "not a regular file" in capsys.readouterr().err


def test_a_symlink_is_refused(tmp_path, capsys):
    target = tmp_path / "target.png"
    target.write_bytes(b"keep")
    (tmp_path / "link.png").symlink_to(target)
    assert main(["demo", "--steps", "5", "--plot", str(tmp_path / "link.png"), "--overwrite"]) == 2
    assert target.read_bytes() == b"keep" and (tmp_path / "link.png").is_symlink()


def test_a_diverged_run_exits_1_with_a_message(capsys):
    assert main(["demo", "--steps", "50", "--lr", "1e30"]) == 1
    err = capsys.readouterr().err
    assert "diverged" in err and "--lr" in err
    assert max(map(len, err.splitlines())) <= 80


def test_an_absurd_step_count_is_refused(capsys):
    import pytest

    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--steps", "99999999999999999999"])
    assert exit_info.value.code == 2 and "argument --steps" in capsys.readouterr().err


def test_compress_refuses_keep_zero_and_other_non_counts(tmp_path, capsys):
    import pytest

    for keep in ("0", "0.0", "-3", "1.5", "1e3", "nan", "many"):
        with pytest.raises(SystemExit) as exit_info:
            main(["compress", str(tmp_path / "in.npz"), "--out", str(tmp_path / "o.fr.npz"), "--keep", keep])
        assert exit_info.value.code == 2
        err = " ".join(capsys.readouterr().err.split())  # unwrap the 80-column lines
        assert "argument --keep: expected a count >= 1 or a fraction in (0, 1]" in err, (keep, err)
    assert not (tmp_path / "o.fr.npz").exists()


def test_experiment_list_lists_every_study_within_80_columns(capsys):
    from minicnn.commands.experiment import _experiments

    for argv in (["experiment", "list"], ["experiment"]):
        assert main(argv) == 0
        out = capsys.readouterr().out
        assert all(f"  {name} " in out for name, _ in _experiments())
        assert max(map(len, out.splitlines())) <= 80


def test_compress_int8_writes_a_smaller_file_that_reloads(tmp_path, capsys):
    from minicnn import models
    from minicnn.app import load_model
    from minicnn.app.frequency import to_frequency

    model = to_frequency(models.build("lenet5"))
    model.save(tmp_path / "s.npz")
    assert main(["compress", str(tmp_path / "s.npz"), "--model", "lenet5", "--out", str(tmp_path / "a.fr.npz"),
                 "--float16"]) == 0
    assert main(["compress", str(tmp_path / "s.npz"), "--model", "lenet5", "--out", str(tmp_path / "b.fr.npz"),
                 "--int8"]) == 0
    out = capsys.readouterr().out
    assert "(int8;" in out and "(float16;" in out
    assert (tmp_path / "b.fr.npz").stat().st_size < (tmp_path / "a.fr.npz").stat().st_size
    assert load_model(tmp_path / "b.fr.npz").kind == "compressed"
    assert main(["compress", str(tmp_path / "s.npz"), "--model", "lenet5", "--out", str(tmp_path / "c.fr.npz"),
                 "--int8", "--float16"]) == 2
    assert "not both" in capsys.readouterr().err
