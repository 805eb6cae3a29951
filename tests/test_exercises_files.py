"""The exercise command writes every file by the write rule (`minicnn.files.write_atomic`).

Stubs, solutions, the backup of a learner's file and the progress file: never onto a folder, a
symbolic link or a device, and never over the learner's own file unless they pass --overwrite.
"""

from __future__ import annotations

import os

from minicnn import exercises
from minicnn.cli import main


def test_solution_write_keeps_the_learners_file_without_overwrite(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "linear.py"
    path.write_text("# my own attempt\n")
    assert main(["exercise", "solution", "linear", "--write", "--dir", "."]) == 2
    err = capsys.readouterr().err
    assert "--overwrite" in err and "left as it is" in err, err
    assert max(len(line) for line in err.splitlines()) <= 80, err
    assert path.read_text() == "# my own attempt\n"
    assert not (tmp_path / "linear.py.bak").exists()


def test_solution_write_with_overwrite_keeps_a_backup_first(tmp_path, capsys):
    path = tmp_path / "linear.py"
    path.write_text("# my own attempt\n")
    assert main(["exercise", "solution", "linear", "--write", "--overwrite", "--dir", str(tmp_path)]) == 0
    assert "kept as" in capsys.readouterr().out
    assert (tmp_path / "linear.py.bak").read_text() == "# my own attempt\n"
    assert path.read_text() == exercises.get("linear").solution()
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]  # no temporary file left


def test_start_refuses_a_symbolic_link_and_leaves_its_target_alone(tmp_path, capsys):
    target = tmp_path / "elsewhere.txt"
    link = tmp_path / "ex" / "linear.py"
    link.parent.mkdir()
    link.symlink_to(target)  # dangling: the old code wrote the stub through it
    assert main(["exercise", "start", "linear", "--dir", str(link.parent)]) == 2
    assert "symbolic link" in capsys.readouterr().err
    assert link.is_symlink() and not target.exists()


def test_solution_write_refuses_a_symbolic_link(tmp_path, capsys):
    target = tmp_path / "notes.py"
    target.write_text("# not an exercise\n")
    folder = tmp_path / "ex"
    folder.mkdir()
    (folder / "linear.py").symlink_to(target)
    for extra in ([], ["--overwrite"]):
        assert main(["exercise", "solution", "linear", "--write", "--dir", str(folder)] + extra) == 2
        assert "symbolic link" in capsys.readouterr().err
    assert (folder / "linear.py").is_symlink() and target.read_text() == "# not an exercise\n"
    assert not (folder / "linear.py.bak").exists()


def test_progress_file_is_never_written_through_a_link(tmp_path, capsys):
    folder = tmp_path / "ex"
    folder.mkdir()
    other = tmp_path / "other.json"
    other.write_text("{}")
    (folder / ".progress.json").symlink_to(other)
    assert main(["exercise", "hint", "linear", "--dir", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "symbolic link" in err and "Traceback" not in err
    assert (folder / ".progress.json").is_symlink() and other.read_text() == "{}"


def test_start_writes_the_stub_and_progress_through_the_rule(tmp_path, monkeypatch, capsys):
    import minicnn.commands.exercise as command
    import minicnn.exercises.state as state

    written = []

    def recording(real):
        def write(path, fn, *, overwrite=False):
            written.append((os.path.basename(path), overwrite))
            return real(path, fn, overwrite=overwrite)
        return write

    monkeypatch.setattr(command, "write_atomic", recording(command.write_atomic))
    monkeypatch.setattr(state, "write_atomic", recording(state.write_atomic))
    assert main(["exercise", "start", "linear", "--dir", str(tmp_path)]) == 0
    assert main(["exercise", "hint", "linear", "--dir", str(tmp_path)]) == 0
    assert ("linear.py", False) in written and (".progress.json", True) in written
