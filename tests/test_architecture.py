"""The package's dependency order (DESIGN.md): functional <- layers <- models <- application tier.

Every `import` in minicnn (at the top of a file or inside a function) is read with `ast`; the module
graph must have no circle, no module may import from a higher tier, and models never import the
analysis tool.
"""

from __future__ import annotations

import ast
import re
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


# ---- the plain math and the kernels (issue: "the course's math in one place, the fast kernels in another")

FUNCTIONAL = ROOT / "functional"
KERNELS = ROOT / "kernels"
MACHINERY = ("minicnn.threads", "minicnn.runtime", "minicnn.kernels")  # what the plain math may not import
MAX_MATH_LINES = 40  # a function of the course's math fits a screen (docstring not counted)
MAX_MATH_FILE_LINES = 350
TWIN_PREFIX = "Fast twin of `"
SUPPORT_MODULES = ("machine", "planner", "workspace")  # kernels' machinery, no kernels: the planner, the
#   machine facts it keys plans by, the FFT workspace. A kernel module names any other public non-kernel
#   function (a predicate a tutorial shows, say) in its tuple SUPPORT; those must be tested too.


def _environment_reads(source: str) -> list[str]:
    """`os.environ`, `environ[...]`, `getenv(...)` and `putenv` anywhere in `source`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "putenv"):
            found.append(ast.unparse(node))
        elif isinstance(node, ast.Name) and node.id in ("environ", "getenv"):
            found.append(node.id)
    return found


def _machinery_imports(path: Path) -> list[str]:
    return sorted(t for t in _imports(path) if any(t == m or t.startswith(m + ".") for m in MACHINERY))


def test_functional_holds_only_the_plain_math():
    """functional/ imports no kernels, no threads or runtime settings, and reads no environment."""
    offenders = {}
    for path in sorted(FUNCTIONAL.glob("*.py")):
        wrong = _machinery_imports(path) + _environment_reads(path.read_text())
        if wrong:
            offenders[path.name] = wrong
    assert not offenders, offenders


def test_the_plain_math_checks_can_fail():
    assert _environment_reads("import os\nn = os.environ.get('X')") == ["os.environ"]
    assert _environment_reads("from os import getenv\nn = getenv('X')") == ["getenv"]
    assert _environment_reads("n = x.shape") == []
    assert _machinery_imports(ROOT / "cli.py"), "the import reader must see cli.py's thread settings"


def _body_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines of a function from its `def` to its end, without its docstring."""
    lines = node.end_lineno - node.lineno + 1
    doc = node.body[0] if node.body else None
    if isinstance(doc, ast.Expr) and isinstance(doc.value, ast.Constant) and isinstance(doc.value.value, str):
        lines -= doc.end_lineno - doc.lineno + 1
    return lines


def _long_functions(path: Path, limit: int) -> list[str]:
    tree = ast.parse(path.read_text())
    return [f"{path.name}:{n.lineno} {n.name} ({_body_lines(n)} lines)" for n in ast.walk(tree)
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and _body_lines(n) > limit]


def test_every_math_function_fits_a_screen():
    long = [f for p in sorted(FUNCTIONAL.glob("*.py")) for f in _long_functions(p, MAX_MATH_LINES)]
    big = [f"{p.name} ({n} lines)" for p in sorted(FUNCTIONAL.glob("*.py"))
           if (n := len(p.read_text().splitlines())) > MAX_MATH_FILE_LINES]
    assert not long and not big, long + big


def _kernel_functions():
    """(module name, function name, function) of every public function defined in minicnn.kernels."""
    import importlib
    import inspect

    found = []
    for path in sorted(KERNELS.glob("*.py")):
        if path.name == "__init__.py" or path.stem in SUPPORT_MODULES:
            continue
        module = importlib.import_module(_module_name(path))
        support = getattr(module, "SUPPORT", ())
        for name, obj in vars(module).items():
            if (not name.startswith("_") and name not in support and inspect.isfunction(obj)
                    and obj.__module__ == module.__name__):
                found.append((module.__name__, name, obj))
    return found


def _support_functions():
    """(module, name) of every public function of the support modules and of each SUPPORT tuple."""
    import importlib
    import inspect

    found = []
    for path in sorted(KERNELS.glob("*.py")):
        if path.name == "__init__.py":
            continue
        module = importlib.import_module(_module_name(path))
        names = (n for n, o in vars(module).items() if not n.startswith("_") and inspect.isfunction(o)
                 and o.__module__ == module.__name__) if path.stem in SUPPORT_MODULES else getattr(module, "SUPPORT", ())
        found += [(module.__name__, n) for n in names]
    return found


def _twin(fn):
    """The plain function a kernel's docstring names ("Fast twin of `minicnn.functional.M.NAME`"), or a
    message saying what is wrong."""
    import importlib

    first = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
    if not first.startswith(TWIN_PREFIX) or "`" not in first[len(TWIN_PREFIX):]:
        return f"docstring does not start with {TWIN_PREFIX}minicnn.functional....`"
    path = first[len(TWIN_PREFIX):].split("`")[0]
    module, _, name = path.rpartition(".")
    if not module.startswith("minicnn.functional"):
        return f"names {path}, which is not in minicnn.functional"
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return f"names {path}, which does not exist"


def _signature_problem(kernel, twin) -> str | None:
    """None when `kernel` takes every parameter of `twin`, same names in the same order, and adds only
    keyword-only parameters with defaults."""
    import inspect

    k, t = inspect.signature(kernel).parameters, inspect.signature(twin).parameters
    plain = [p for p in k.values() if p.kind != p.KEYWORD_ONLY]
    twin_plain = [p for p in t.values() if p.kind != p.KEYWORD_ONLY]
    if [p.name for p in plain] != [p.name for p in twin_plain]:
        return f"positional parameters {[p.name for p in plain]} != twin's {[p.name for p in twin_plain]}"
    extra = [p for p in k.values() if p.kind == p.KEYWORD_ONLY and p.name not in t]
    if any(p.default is p.empty for p in extra):
        return "adds a keyword-only parameter without a default"
    missing = [name for name, p in t.items() if p.kind == p.KEYWORD_ONLY and name not in k]
    return f"lacks the twin's keyword-only {missing}" if missing else None


def test_every_kernel_has_a_plain_twin_with_its_signature():
    problems = []
    for module, name, fn in _kernel_functions():
        twin = _twin(fn)
        if isinstance(twin, str):
            problems.append(f"{module}.{name}: {twin}")
        elif (why := _signature_problem(fn, twin)) is not None:
            problems.append(f"{module}.{name}: {why}")
    assert not problems, "\n".join(problems)


def test_every_kernel_is_tested():
    """Some test file other than this one names each kernel (and is meant to compare it with its twin)."""
    tests = ROOT.parent / "tests"
    text = "\n".join(p.read_text() for p in sorted(tests.glob("test_*.py")) if p.name != "test_architecture.py")
    named = [(m, n) for m, n, _ in _kernel_functions()] + _support_functions()
    untested = [f"{m}.{n}" for m, n in named if not re.search(rf"\b{n}\b", text)]
    assert not untested, untested


def test_the_twin_rule_can_fail():
    def plain(x, w, b=None, stride=1):
        """y = x."""

    def good(x, w, b=None, stride=1, *, workspace=None):
        """Fast twin of `minicnn.functional.conv.conv2d`: ..."""

    def reordered(x, b, w, stride=1):
        """Fast twin of `minicnn.functional.nothing.here`"""

    assert _signature_problem(good, plain) is None
    assert "positional" in _signature_problem(reordered, plain)
    assert "does not exist" in _twin(reordered)
    assert "does not start" in _twin(plain)
    assert _twin(good) is not None and not isinstance(_twin(good), str)
