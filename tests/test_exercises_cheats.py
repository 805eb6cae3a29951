"""The grader cannot be fooled by the easy cheats, and every rule it enforces says so.

Each test writes a solution that cheats one way and checks that it fails with the message that names
the rule: calling the engine, calling SciPy's answer, reading the expected values from memory,
hard-coding the documented outputs, returning float64 for float32 input, changing the arguments in
place. The learner's code runs in a child process that holds no expected values (`runner.Session`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from minicnn import exercises
from minicnn.exercises.grading import WIDTH, grade


def _grade(name: str, text: str, tmp_path: Path, seed: int | None = None):
    path = tmp_path / f"{name}.py"
    path.write_text(text)
    rng = None if seed is None else np.random.default_rng(seed)
    report = grade(exercises.get(name), path, shown=f"exercises/{name}.py", rng=rng)
    assert all(len(line) <= WIDTH for line in report.text().splitlines()), report.text()
    return report


def _solution_with(name: str, old: str, new: str) -> str:
    text = exercises.get(name).solution()
    before, found, after = text.rpartition(old)
    assert found, old
    return before + new + after


def test_importing_the_engine_is_refused_with_the_rule(tmp_path):
    text = ("from minicnn.functional import conv2d as _engine\n\n\n"
            "def conv2d(x, w, b, stride=1, padding=0):\n    return _engine(x, w, b, stride, padding)\n")
    report = _grade("conv2d_direct", text, tmp_path)
    assert not report.ok
    assert "may not use minicnn" in report.text() and "import minicnn.functional refused" in report.text()
    assert "exercise rules" in report.hint


def test_importing_the_engine_inside_the_function_or_via_importlib_is_refused(tmp_path):
    for body in ("    import minicnn.functional as F\n",
                 "    import importlib\n    F = importlib.import_module('minicnn.functional')\n",
                 "    F = __import__('minicnn.functional', fromlist=['x'])\n"):
        text = ("def linear_forward(x, w, b):\n" + body + "    return F.linear(x, w, b)\n\n\n"
                "def linear_backward(dy, x, w):\n" + body + "    return F.linear_backward(dy, x, w)\n")
        report = _grade("linear", text, tmp_path)
        assert not report.ok and "may not use minicnn" in report.text(), report.text()


def test_removing_the_import_guard_does_not_open_the_engine(tmp_path):
    """The finder on sys.meta_path can be removed; the audit hook behind it cannot."""
    root = Path(exercises.__file__).resolve().parents[2]
    text = ("import sys\nsys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != 'Refuse']\n"
            f"sys.path.insert(0, {str(root)!r})\n"
            "from minicnn.functional import linear as linear_forward, linear_backward\n")
    report = _grade("linear", text, tmp_path)
    assert not report.ok and "import minicnn.functional refused" in report.text(), report.text()


def test_executing_the_engine_files_by_path_is_refused(tmp_path):
    engine = Path(exercises.__file__).resolve().parents[1] / "functional" / "dense.py"
    text = (f"import importlib.util\nspec = importlib.util.spec_from_file_location('d', {str(engine)!r})\n"
            "mod = importlib.util.module_from_spec(spec)\nspec.loader.exec_module(mod)\n"
            "linear_forward, linear_backward = mod.linear, mod.linear_backward\n")
    report = _grade("linear", text, tmp_path)
    assert not report.ok and "may not use minicnn" in report.text(), report.text()


def test_scipy_correlate_is_refused_for_convolution(tmp_path):
    text = ("import numpy as np\nfrom scipy.signal import correlate\n\n\n"
            "def conv2d(x, w, b, stride=1, padding=0):\n"
            "    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))\n"
            "    y = np.stack([correlate(xp, w[t:t + 1], mode='valid')[:, 0] for t in range(len(w))], 1)\n"
            "    return y[:, :, ::stride, ::stride] + b[None, :, None, None]\n")
    report = _grade("conv2d_direct", text, tmp_path)
    assert not report.ok
    assert "conv2d_direct may not use scipy.signal" in report.text()
    text = text.replace("from scipy.signal import correlate", "import numpy as np\ncorrelate = np.correlate")
    assert "numpy.correlate refused" in _grade("conv2d_direct", text, tmp_path).text()


def test_numpy_correlate_is_refused_under_its_other_names(tmp_path):
    base = ("import numpy as np\n{imp}\n\n\ndef conv2d(x, w, b, stride=1, padding=0):\n"
            "    {call}\n    return x\n")
    core = "numpy._core" if hasattr(np, "_core") else "numpy.core"  # NumPy 2 / NumPy 1.26 (CI's oldest)
    for imp, call in [(f"from {core}.numeric import correlate", "correlate(np.ones(3), np.ones(3))"),
                      (f"from {core} import multiarray", "multiarray.correlate2(np.ones(3), np.ones(3), 0)"),
                      (f"from {core} import _multiarray_umath as m", "m.correlate(np.ones(3), np.ones(3), 0)")]:
        text = _grade("conv2d_direct", base.format(imp=imp, call=call), tmp_path).text()
        assert "refused" in text and "conv2d_direct may not use" in " ".join(text.split()), text


def test_reading_expected_values_from_memory_finds_nothing(tmp_path):
    """The child holds only inputs: a gc scan for the grader's objects finds no expected value."""
    text = ("import gc\nimport numpy as np\n\n\n"
            "def _lookup(x):\n"
            "    for obj in gc.get_objects():\n"
            "        try:\n"
            "            expected = obj.__dict__.get('expected') if hasattr(obj, '__dict__') else None\n"
            "        except Exception:\n"
            "            continue\n"
            "        if isinstance(expected, dict) and 'y' in expected:\n"
            "            return expected['y']\n"
            "    return np.zeros(1)\n\n\n"
            "def conv2d(x, w, b, stride=1, padding=0):\n    return _lookup(x)\n")
    report = _grade("conv2d_direct", text, tmp_path)
    assert not report.ok and "expected a NumPy array" not in report.text()
    assert "expected shape" in report.text()  # it found nothing to return but its own zeros


def test_hard_coded_example_outputs_fail_the_random_cases(tmp_path):
    """A file that returns the right answer for every documented (fixed-seed) case, looked up by its
    input, fails on the cases drawn fresh for this run."""
    exercise = exercises.get("linear")
    fixed = [c for c in exercise.cases(np.random.default_rng(0)) if getattr(c, "function", "") == "linear_forward"
             and not c.label.startswith("random") and "float32" not in c.label]
    table = {c.args[0].tobytes().hex(): c.expected["y"].tolist() for c in fixed}
    text = (f"import numpy as np\nTABLE = {table!r}\n\n\n"
            "def linear_forward(x, w, b):\n    return np.array(TABLE[x.tobytes().hex()])\n\n\n"
            "def linear_backward(dy, x, w):\n    return dy @ w, dy.T @ x, dy.sum(axis=0)\n")
    report = _grade("linear", text, tmp_path)
    assert not report.ok
    assert all(r.status == "PASS" for r in report.rows[:3])  # the documented cases pass
    assert "first failure: linear_forward: random" in report.text() and "KeyError" in report.text()


def test_float64_output_for_float32_input_fails_on_the_dtype(tmp_path):
    text = _solution_with("conv2d_direct", "    return y\n", "    return y.astype(np.float64)\n")
    report = _grade("conv2d_direct", text, tmp_path)
    assert not report.ok
    assert "float32" in report.text() and "expected dtype float32, got float64" in report.text()


def test_in_place_optimizer_step_fails_naming_the_changed_arrays(tmp_path):
    text = _solution_with("optimizers", "    v = g.copy() if velocity is None else momentum * velocity + g\n"
                          "    return p - lr * v, v\n",
                          "    if velocity is None:\n        v = g.copy()\n    else:\n"
                          "        velocity *= momentum\n        velocity += g\n        v = velocity\n"
                          "    p -= lr * v\n    return p, v\n")
    report = _grade("optimizers", text, tmp_path)
    assert not report.ok
    assert "sgd_momentum_step() changed the arrays passed in as p" in report.text(), report.text()
    assert "velocity" in report.text() and "v *= momentum" in report.hint


def test_conv2d_dx_with_padding_larger_than_the_kernel(tmp_path):
    """padding > KH-1 is in the contract (a fixed case and random ones); the solution handles it."""
    labels = [c.label for c in exercises.get("conv2d_dx").cases(np.random.default_rng(0))]
    assert any("w (2,2,2,2) pad 3" in label for label in labels)
    report = _grade("conv2d_dx", exercises.get("conv2d_dx").solution(), tmp_path)
    assert report.ok, report.text()


def test_random_cases_differ_between_runs():
    exercise = exercises.get("conv2d_direct")
    first = [c.label for c in exercise.cases(np.random.default_rng()) if c.label.startswith("random")]
    second = [c.label for c in exercise.cases(np.random.default_rng()) if c.label.startswith("random")]
    assert first and len(first) == len(second)
    draws = [[c.label for c in exercise.cases(np.random.default_rng()) if c.label.startswith("random")]
             for _ in range(5)]
    assert len({tuple(d) for d in draws + [first, second]}) > 1


def test_a_helper_module_beside_the_file_imports(tmp_path):
    """The learner's own modules next to their file are theirs to use (only the engine is refused)."""
    (tmp_path / "mymath.py").write_text("def relu_mask(x):\n    return x > 0\n")
    text = exercises.get("activations").solution().replace(
        "    return dy * (x > 0)", "    from mymath import relu_mask\n    return dy * relu_mask(x)")
    report = _grade("activations", text, tmp_path)
    assert report.ok, report.text()
