"""The tutorials work under any package name: `tutorials` in a checkout (`python -m tutorials N`), and
`minicnn_tutorials` as the wheel may install them, so that a learner's own folder named `tutorials`
cannot shadow them. Every import inside the package is relative."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import minicnn

ROOT = Path(minicnn.__file__).resolve().parent.parent
PACKAGE = ROOT / "tutorials"

UNDER_ANOTHER_NAME = """
import importlib.util, io, sys
spec = importlib.util.spec_from_file_location("minicnn_tutorials", sys.argv[1] + "/__init__.py",
                                              submodule_search_locations=[sys.argv[1]])
package = importlib.util.module_from_spec(spec)
sys.modules["minicnn_tutorials"] = package
spec.loader.exec_module(package)
from minicnn_tutorials._runner import run_steps
out = io.StringIO()
rc = run_steps(package.load_chapter(1), 1, pause=False, start=1, quick=True, out=out, fig_dir=sys.argv[2])
names = sorted(m for m in sys.modules if m.split(".")[0] in ("tutorials", "minicnn_tutorials"))
print(rc, "decoy" in sys.modules, " ".join(names))
"""


def test_every_import_inside_the_package_is_relative():
    absolute = []
    for path in sorted(PACKAGE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            absolute += [f"{path.name}:{node.lineno}" for n in names if n.split(".")[0] == "tutorials"]
    assert not absolute, f"imports of `tutorials` by name: {absolute}"


def test_the_chapters_run_under_another_package_name_beside_a_folder_called_tutorials(tmp_path):
    decoy = tmp_path / "tutorials"
    decoy.mkdir()
    (decoy / "__init__.py").write_text("import sys\nsys.modules['decoy'] = sys.modules[__name__]\n")
    run = subprocess.run([sys.executable, "-c", UNDER_ANOTHER_NAME, str(PACKAGE), str(tmp_path / "figures")],
                         capture_output=True, text=True, cwd=tmp_path, timeout=300,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)))  # minicnn from the checkout, the decoy first
    assert run.returncode == 0, run.stderr[-2000:]
    rc, decoy_imported, *names = run.stdout.split()
    assert rc == "0" and decoy_imported == "False"
    assert names and all(n.startswith("minicnn_tutorials") for n in names), names
    assert "minicnn_tutorials.ch01_layer_abstraction" in names
