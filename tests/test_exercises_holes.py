"""The holes a child process leaves open in Python, closed as far as an audit hook reaches.

Each test is a learner's file that tries one way around the rules: reading the grading process's
memory or environment through /proc, reaching /proc through a folder's descriptor or the working
folder, patching or reading memory with ctypes, starting a process that would run without the rules
(subprocess, os.system, os.fork, a sub-interpreter), signalling the grader. Each must fail with the
message naming the rule. What stays open is listed in `minicnn/exercises/child.py`'s docstring.
"""

from __future__ import annotations

import pytest

from minicnn import exercises
from minicnn.exercises.child import RULE_SYSTEM
from minicnn.exercises.grading import WIDTH, grade

RULE = RULE_SYSTEM.split(";")[0]  # "exercise rules: your code may not start processes, ..."

CHEATS = {
    "parent memory": "f = open(f'/proc/{os.getppid()}/mem', 'rb')",
    "parent environ": "open(f'/proc/{os.getppid()}/environ').read()",
    "parent cmdline": "open('/proc/%d/cmdline' % os.getppid(), 'rb').read()",
    "parent fds by os.open": "os.open(f'/proc/{os.getppid()}/fd/0', os.O_RDONLY)",
    "parent fds listed": "os.listdir(f'/proc/{os.getppid()}/fd')",
    "through /proc/self/..": "open(f'/proc/self/../{os.getppid()}/maps').read()",
    "a folder's descriptor": "d = os.open('/proc', os.O_RDONLY)\n    os.open('%d/mem' % os.getppid(), "
                             "os.O_RDONLY, dir_fd=d)",
    "the working folder": "os.chdir(f'/proc/{os.getppid()}')\n    open('mem', 'rb')",
    "kernel memory": "open('/proc/kcore', 'rb')",
    "ctypes read": "import ctypes\n    ctypes.string_at(id(x), 16)",
    "ctypes library": "import ctypes\n    ctypes.CDLL(None)",
    "ctypes memmove": "import ctypes\n    b = ctypes.create_string_buffer(8)\n    ctypes.memmove(b, b, 1)",
    "ctypes from address": "import ctypes\n    ctypes.c_char.from_address(id(x))",
    "subprocess": "import subprocess, sys\n    subprocess.run([sys.executable, '-c', 'import minicnn'])",
    "os.system": "os.system('true')",
    "os.fork": "os.fork()",
    "os.execv": "os.execv('/bin/true', ['true'])",
    "os.posix_spawn": "os.posix_spawn('/bin/true', ['true'], {})",
    "multiprocessing": "import multiprocessing\n    multiprocessing.Process(target=print).start()",
    "kill the grader": "import signal\n    os.kill(os.getppid(), signal.SIGKILL)",
    "fork_exec": "import _posixsubprocess\n    _posixsubprocess.fork_exec()",
    "fork_exec anew": "import sys\n    del sys.modules['_posixsubprocess']\n    import _posixsubprocess",
    "subprocess internals": "import subprocess\n    subprocess._fork_exec()",
    "sub-interpreter": "import _xxsubinterpreters\n    _xxsubinterpreters.create()",
}


def _file(body: str) -> str:
    return ("import os\nimport numpy as np\n\n\ndef linear_forward(x, w, b):\n    " + body +
            "\n    return x @ w.T + b\n\n\ndef linear_backward(dy, x, w):\n    return dy @ w, dy.T @ x, "
            "dy.sum(axis=0)\n")


@pytest.mark.parametrize("cheat", sorted(CHEATS))
def test_each_way_around_the_child_fails_naming_the_rule(cheat, tmp_path):
    path = tmp_path / "linear.py"
    path.write_text(_file(CHEATS[cheat]))
    report = grade(exercises.get("linear"), path, shown="exercises/linear.py", seed=0)
    text = report.text()
    assert not report.ok, text
    assert RULE in " ".join(text.split()) and "refused" in text, text
    assert "exercise rules" in report.hint, text
    assert all(len(line) <= WIDTH for line in text.splitlines()), text


def test_the_child_inherits_no_descriptor_of_the_grader(tmp_path):
    """Its only descriptors: the two protocol pipes (dup'ed) and its own stderr file; nothing that could
    lead to the parent's memory or files."""
    text = ("import os\n\n\ndef _link(f):\n    try:\n        return os.readlink('/proc/self/fd/' + f)\n"
            "    except OSError:\n        return 'listing'\n\n\n"
            "def linear_forward(x, w, b):\n    links = [_link(f) for f in os.listdir('/proc/self/fd')]\n"
            "    raise ValueError('FDS ' + ' '.join(sorted(links)))\n\n\n"
            "def linear_backward(dy, x, w):\n    return dy @ w, dy.T @ x, dy.sum(axis=0)\n")
    path = tmp_path / "linear.py"
    path.write_text(text)
    report = grade(exercises.get("linear"), path, shown="exercises/linear.py", seed=0)
    line = " ".join(" ".join(report.failure).split())
    links = line[line.rindex("FDS ") + 4:].replace(" (deleted)", "").split()
    kinds = ["pipe" if link.startswith("pipe:") else link for link in links]
    assert kinds.count("pipe") == 3 and kinds.count("listing") == 1, line  # stdin, stdout (twice)
    files = [k for k in kinds if k not in ("pipe", "listing")]
    assert len(files) == 1 and "#" in files[0], line  # stderr: the parent's unnamed temporary file


def test_the_solutions_own_process_checks_still_pass(tmp_path):
    """Reading its own /proc entries and working normally is untouched by the rules."""
    path = tmp_path / "linear.py"
    path.write_text(_file("open('/proc/self/status').read()\n    os.listdir('/proc/self/fd')"))
    report = grade(exercises.get("linear"), path, shown="exercises/linear.py", seed=0)
    assert report.ok, report.text()
