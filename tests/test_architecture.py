"""The package's dependency order (DESIGN.md): functional <- layers <- models <- application tier.

Every `import` in minicnn (at the top of a file or inside a function) is read with `ast`; the module
graph must have no circle, no module may import from a higher tier, and models never import the
analysis tool.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import minicnn

ROOT = Path(minicnn.__file__).parent

# tier of each part of the package (longest prefix wins); a module may import only from its own tier or lower
TIERS = {
    "minicnn": 0,  # the package docstring and __version__
    "minicnn.core": 0,
    "minicnn.threads": 0,
    "minicnn.runtime": 0,
    "minicnn.functional": 1,
    "minicnn.kernels": 1,
    "minicnn.layers": 2,
    "minicnn.losses": 2,
    "minicnn.optim": 2,
    "minicnn.gradcheck": 2,
    "minicnn.data": 2,
    "minicnn.analysis": 3,
    "minicnn.models": 3,
    "minicnn.app": 4,
    "minicnn.gradcheck_cases": 5,
    "minicnn.visualize": 5,
    "minicnn.exercises": 5,
    "minicnn.experiments": 5,
    "minicnn.commands": 5,
    "minicnn.cli": 5,
    "minicnn.__main__": 5,
}


def _module_name(path: Path) -> str:
    parts = ("minicnn",) + path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_package(name: str) -> bool:
    return (ROOT.parent / name.replace(".", "/") / "__init__.py").is_file()


def _exists(name: str) -> bool:
    return _is_package(name) or (ROOT.parent / (name.replace(".", "/") + ".py")).is_file()


def _imports(path: Path) -> set[str]:
    """The minicnn modules `path` imports (`from pkg import sub` counts as importing pkg.sub)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "minicnn"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "minicnn":
                continue
            subs = {f"{target}.{a.name}" for a in node.names if _exists(f"{target}.{a.name}")}
            found |= subs or {target}
            if len(subs) < len(node.names):
                found.add(target)
    found.discard(name)
    return found


def _graph() -> dict[str, set[str]]:
    return {_module_name(p): _imports(p) for p in sorted(ROOT.rglob("*.py"))}


def _tier(name: str) -> int:
    prefix = max((p for p in TIERS if name == p or name.startswith(p + ".")), key=len, default=None)
    if prefix is None:
        pytest.fail(f"{name}: not placed in a tier; add it to TIERS in tests/test_architecture.py")
    return TIERS[prefix]


def test_no_import_circle():
    graph = _graph()
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                pytest.fail("import circle: " + " -> ".join(path[path.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])


def test_no_import_from_a_higher_tier():
    wrong = [f"{a} (tier {_tier(a)}) imports {b} (tier {_tier(b)})"
             for a, targets in _graph().items() for b in sorted(targets) if _tier(b) > _tier(a)]
    assert not wrong, "\n".join(wrong)


def test_models_never_import_analysis():
    offenders = [a for a, targets in _graph().items() if a.startswith("minicnn.models")
                 and any(t.startswith("minicnn.analysis") for t in targets)]
    assert not offenders


def test_the_checker_sees_imports_inside_functions(tmp_path):
    """The graph reader is not blind: it finds a function-level import, relative imports and submodules."""
    imports = _imports(ROOT / "app" / "loading.py")
    assert {"minicnn.models", "minicnn.app.checkpoint", "minicnn.app.frequency"} <= imports
    assert "minicnn.analysis" in _imports(ROOT / "commands" / "summary.py")  # imported inside report()


def _command_runs(source: str) -> list[str]:
    """Calls of a command's `run(args)` in `source`: `run` imported from minicnn.commands.X, or
    `X.run` on a name bound to a minicnn.commands module."""
    modules, found = set(), []
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("minicnn.commands"):
            for a in node.names:
                if a.name == "run":
                    found.append(f"from {node.module} import run")
                modules.add(a.asname or a.name)
        elif isinstance(node, ast.Import):
            modules |= {a.asname or a.name for a in node.names if a.name.startswith("minicnn.commands")}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "run":
            base = ast.unparse(node.value)
            if base in modules or base.startswith("minicnn.commands"):
                found.append(f"{base}.run")
    return found


def test_tutorials_call_library_functions_never_a_commands_run():
    tutorials = ROOT.parent / "tutorials"
    offenders = {p.name: _command_runs(p.read_text()) for p in sorted(tutorials.glob("*.py"))}
    assert not {k: v for k, v in offenders.items() if v}
    # the check can fail:
    assert _command_runs("from minicnn.commands import summary\nsummary.run(args)") == ["summary.run"]
    assert _command_runs("from minicnn.commands.train import run") == ["from minicnn.commands.train import run"]
    assert _command_runs("from minicnn.commands.summary import report\nreport('x', (1, 2, 2))") == []
