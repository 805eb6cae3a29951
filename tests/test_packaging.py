"""pyproject.toml lists every package (it must: package-dir, which installs tutorials/ as
`minicnn_tutorials`, does not mix with setuptools' automatic package finding)."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_every_package_is_listed_in_pyproject():
    tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "minicnn").rglob("__init__.py")}
    listed = set(config["packages"])
    assert found <= listed, sorted(found - listed)
    assert config["package-dir"] == {"minicnn_tutorials": "tutorials"} and "minicnn_tutorials" in listed
    assert not {p for p in listed - {"minicnn_tutorials"} if p not in found}, "a listed package does not exist"
