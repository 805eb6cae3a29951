"""`minicnn exercise`: every grader can fail, and says why.

For every exercise: the untouched stub fails, the written solution passes, and typical wrong solutions
(made by editing one or two lines of the solution) fail with the hint for that mistake. Files that
hang, print, crash or return the wrong dtype/shape get a clear message. The bulk runs in-process
(`grading.grade`); a few tests go through the child process and the command line.
"""

from __future__ import annotations

import doctest
import importlib.util
import json
import re
from pathlib import Path

import pytest

from minicnn import exercises
from minicnn.cli import main
from minicnn.commands import exercise as command
from minicnn.exercises.grading import WIDTH, check_file, grade

# (exercise, [(old text, new text), ...] applied to the solution, words the hint must contain)
WRONG = [
    ("linear", [("dx = dy @ w  #", "dx = dy @ w.T  #")], "no .T"),
    ("linear", [("dw = dy.T @ x", "dw = x.T @ dy")], "not x.T @ dy"),
    ("linear", [("db = dy.sum(axis=0)", "db = dy.mean(axis=0)")], "you took the mean"),
    ("linear", [("return x @ w.T + b", "return x @ w.T")], "add the bias"),
    ("conv2d_direct", [("(window * w[to])", "(window * w[to, :, ::-1, ::-1])")], "flipped the kernel"),
    ("conv2d_direct", [(" + b[to]", "")], "add the bias"),
    ("conv2d_direct", [("h + 2 * padding", "h"), ("wd + 2 * padding", "wd"),
                       ("xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))", "xp = x")],
     "pad x with"),
    ("receptive_field", [("r += (k - 1) * jump", "r += k - 1")], "strides matter"),
    ("receptive_field", [("r += (k - 1) * jump\n        jump *= s", "jump *= s\n        r += (k - 1) * jump")],
     "BEFORE this one"),
    ("output_size", [("extent = dilation * (kernel - 1) + 1", "extent = kernel")], "dilation spreads"),
    ("output_size", [("size + 2 * padding", "size + padding")], "BOTH sides"),
    ("output_size", [("// stride + 1", "// stride")], "+ 1 at the end"),
    ("conv2d_dx", [("[:, :, ::-1, ::-1]", "")], "UNFLIPPED kernel"),
    ("conv2d_dx", [("ph, pw = kh - 1 - padding, kw - 1 - padding", "ph, pw = kh - 1, kw - 1")], "not KH-1"),
    ("conv2d_dx", [("ph, pw = kh - 1 - padding, kw - 1 - padding", "ph, pw = padding, padding")],
     "not by the forward's padding"),
    ("conv2d_dw", [("dw[:, :, i, j] = np.einsum", "dw[:, :, kh - 1 - i, kw - 1 - j] = np.einsum")],
     "dw is flipped"),
    ("conv2d_dw", [("    return dw\n", "    return dw / x.shape[0]\n")], "do not average"),
    ("max_pool", [("np.add.at(dx, (nn, cc, r + i, s + j), dy[:, :, p, q])",
                   "dx[nn, cc, r + i, s + j] = dy[:, :, p, q]")], "ADD (+=)"),
    ("max_pool", [("np.add.at(dx, (nn, cc, r + i, s + j), dy[:, :, p, q])",
                   "dx[:, :, r:r + k, s:s + k] += dy[:, :, p, q][:, :, None, None]")],
     "not to every element"),
    ("max_pool", [("np.add.at(dx, (nn, cc, r + i, s + j), dy[:, :, p, q])",
                   "top = x[:, :, r:r + k, s:s + k].max(axis=(2, 3), keepdims=True)\n"
                   "            dx[:, :, r:r + k, s:s + k] += (x[:, :, r:r + k, s:s + k] == top) * "
                   "dy[:, :, p, q][:, :, None, None]")], "FIRST maximum"),
    ("avg_pool_backward", [("share = dy / (k * k)", "share = dy")], "divide by K*K"),
    ("avg_pool_backward", [("share = dy / (k * k)", "share = dy / k")], "not by K"),
    ("avg_pool_backward", [("] += share", "] = share")], "ADD (+=)"),
    ("activations", [("return dy * (x > 0)", "return dy * (x >= 0)")], "use x > 0"),
    ("activations", [("np.where(x > 0, dy, alpha * dy)", "np.where(x > 0, alpha * dy, dy)")], "slopes swapped"),
    ("activations", [("dgrouped = np.zeros(grouped.shape, dtype=dy.dtype)\n"
                      "    np.put_along_axis(dgrouped, winner[:, :, None], dy[:, :, None], axis=2)",
                      "dgrouped = np.repeat(dy[:, :, None], pieces, axis=2)")], "not to all of them"),
    ("im2col", [("return cols.reshape(c * kh * kw, n * oh * ow)", "return cols.reshape(c * kh * kw, n * oh * ow).T")],
     "you returned the transpose"),
    ("im2col", [("y = y.reshape(t, n, oh, ow).transpose(1, 0, 2, 3)", "y = y.reshape(n, t, oh, ow)")],
     "reshape it to (T, N, OH, OW)"),
    ("space_to_depth", [("x6.transpose(0, 1, 3, 5, 2, 4)", "x6.transpose(0, 3, 5, 1, 2, 4)")], "channel order"),
    ("space_to_depth", [("x6.transpose(0, 1, 3, 5, 2, 4)", "x6.transpose(0, 1, 5, 3, 2, 4)")],
     "i varies slower"),
    ("space_to_depth", [("y6.transpose(0, 1, 4, 2, 5, 3)", "y6.transpose(0, 1, 4, 3, 5, 2)")], "(i slower)"),
    ("batch_norm", [("dx = (gamma * inv_std).reshape(shape) * (\n"
                     "        dy - (dbeta / m).reshape(shape) - x_hat * (dgamma / m).reshape(shape))",
                     "dx = (gamma * inv_std).reshape(shape) * dy")], "depend on x too"),
    ("batch_norm", [(" - x_hat * (dgamma / m).reshape(shape))", ")")], "variance term is missing"),
    ("dct_weight", [('idctn(mask * coeffs, norm="ortho")', 'idctn(coeffs, norm="ortho")')], "multiply by the mask first"),
    ("dct_weight", [('return mask * dctn(dw, norm="ortho")', 'return dctn(dw, norm="ortho")')], "get no gradient"),
    ("dct_weight", [('return mask * dctn(dw, norm="ortho")', 'return mask * idctn(dw, norm="ortho")')], "adjoint"),
    ("zigzag_mask", [("rank.reshape(shape) < k", "rank.reshape(shape) <= k")], "exactly k entries"),
    ("zigzag_mask", [("tuple(idx[::-1])", "tuple(idx)")], "FIRST axis"),
    ("softmax_ce", [("shifted = logits - logits.max(axis=1, keepdims=True)", "shifted = logits")], "overflow"),
    ("softmax_ce", [("return loss, dlogits / n", "return loss, dlogits")], "divide the gradient by N"),
    ("softmax_ce", [(".mean())", ".sum())")], "MEAN over the batch"),
    ("optimizers", [("momentum * velocity + g", "momentum * velocity + (1 - momentum) * g")], "no dampening"),
    ("optimizers", [("m_hat = m / (1 - b1**t)", "m_hat = m"), ("v_hat = v / (1 - b2**t)", "v_hat = v")],
     "bias correction"),
    ("optimizers", [("(np.sqrt(v_hat) + eps)", "np.sqrt(v_hat + eps)")], "outside the square root"),
    ("optimizers", [("g = grad + weight_decay * p", "g = grad")], "weight decay"),
    # the usual mistakes of issue 23, one wrong solution each
    ("conv2d_direct", [("r, q = i * stride, j * stride", "r, q = i, j")], "the stride is ignored"),
    ("conv2d_dw", [("rows = slice(i, i + stride * (oh - 1) + 1, stride)", "rows = slice(i, i + oh)"),
                   ("cols = slice(j, j + stride * (ow - 1) + 1, stride)", "cols = slice(j, j + ow)")],
     "the stride is ignored"),
    ("conv2d_dw", [('np.einsum("ntpq,nspq->ts", dy, window)', 'np.einsum("tpq,spq->ts", dy[0], window[0])')],
     "image 0's gradient only"),
    ("im2col", [("win = xp[:, :, i:i + stride * (oh - 1) + 1:stride,\n                     j:j + stride * (ow - 1) + 1:stride]",
                 "win = xp[:, :, i:i + oh,\n                     j:j + ow]")], "the stride is ignored"),
    ("avg_pool_backward", [("share = dy / (k * k)",
                            "real = np.pad(np.ones((h, w)), padding)\n    count = np.zeros((oh, ow))\n"
                            "    for i in range(k):\n        for j in range(k):\n"
                            "            count += real[i:i + stride * (oh - 1) + 1:stride, "
                            "j:j + stride * (ow - 1) + 1:stride]\n    share = dy / count")],
     "not by the number of real pixels"),
    ("avg_pool_backward", [("return dxp[:, :, padding:padding + h, padding:padding + w]", "return dxp[:, :, :h, :w]")],
     "padding offset is missing"),
    ("batch_norm", [("    mu = x.mean(axis=axes)\n    inv_std = 1.0 / np.sqrt(x.var(axis=axes) + eps)\n"
                     "    x_hat = (x - mu.reshape(shape)) * inv_std.reshape(shape)\n",
                     "    mu = x.mean(axis=0)\n    inv_std = 1.0 / np.sqrt(x.var(axis=0) + eps)\n"
                     "    x_hat = (x - mu) * inv_std\n    axes = (0,)\n"),
                    ("    m = dy.size // dy.shape[1]\n    dx = (gamma * inv_std).reshape(shape) * (\n"
                     "        dy - (dbeta / m).reshape(shape) - x_hat * (dgamma / m).reshape(shape))",
                     "    m = x.shape[0]\n    dx = gamma.reshape(shape) * inv_std * (dy - dbeta / m - x_hat * dgamma / m)")],
     "not axis 0 only"),
    ("batch_norm", [("np.sqrt(x.var(axis=axes) + eps)", "np.sqrt(x.var(axis=axes, ddof=1) + eps)")], "BIASED variance"),
    ("batch_norm", [("    return dx, dgamma, dbeta\n", "    return dx, dgamma / m, dbeta / m\n")], "SUMS over the batch"),
    ("dct_weight", [('idctn(mask * coeffs, norm="ortho")', 'mask * idctn(coeffs, norm="ortho")')],
     "mask the COEFFICIENTS before"),
    ("dct_weight", [('idctn(mask * coeffs, norm="ortho")', 'idctn(mask * coeffs)')], "orthonormal transform"),
    ("optimizers", [("v = g.copy() if velocity is None else momentum * velocity + g",
                     "v = (1 - momentum) * g if velocity is None else momentum * velocity + (1 - momentum) * g")],
     "not even on the first step"),
    ("softmax_ce", [("logits.max(axis=1, keepdims=True)", "logits.max(axis=0, keepdims=True)")], "ROW's max"),
    # the exercises added for issue 23
    ("early_stopping", [("if loss < best_loss:", "if loss <= best_loss:")], "EARLIEST epoch of a tie"),
    ("early_stopping", [("elif epoch - best >= patience:", "elif epoch - best > patience:")], "epoch - best >= patience"),
    ("locally_connected", [("window, w[a, q])", "window, w[0, 0])")], "UNTIED"),
    ("locally_connected", [("    return y + b\n", "    return y\n")], "add the bias"),
    ("receptive_window", [("first = i * jump", "first = i * s")], "ALL the strides"),
    ("receptive_window", [("return first, first + r - 1", "return first, first + r")], "inclusive"),
    ("conv_matrix", [("m[:, a, q, :, a:a + kh, q:q + kw] = w", "m[:, a, q, :, a:a + kh, q:q + kw] = w[:, :, ::-1, ::-1]")],
     "flipped the kernel"),
    ("conv_matrix", [("return m.reshape(t * oh * ow, c * h * wd)", "return m.reshape(t * oh * ow, c * h * wd).T")],
     "one ROW per output"),
    ("conv2d_dx_strided", [("d[:, :, :stride * (oh - 1) + 1:stride, :stride * (ow - 1) + 1:stride] = dy",
                            "d[:, :, :oh, :ow] = dy")], "dilate dy first"),
    ("conv2d_dx_strided", [("w.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1]  # (C, T, KH, KW)",
                            "w.transpose(1, 0, 2, 3)  # (C, T, KH, KW)")], "flip the kernel"),
    ("max_pool_padded", [("constant_values=-np.inf", "constant_values=0")], "pad with -inf"),
    ("max_pool_padded", [("np.add.at(dxp, (nn, cc, r + i, s + j), dy[:, :, a, q])",
                          "dxp[:, :, r:r + k, s:s + k] += dy[:, :, a, q][:, :, None, None]")], "not to every element"),
    ("conv_costs", [('elif kind == "depthwise":\n        weights = c * k * k',
                     'elif kind == "depthwise":\n        weights = t * c * k * k')], "ONE K x K kernel per channel"),
    ("conv_costs", [("return weights, weights * oh * ow", "return weights, weights")], "MACs = weights * OH * OW"),
    ("conv_costs", [("weights = c * k * k + t * c", "weights = c * k * k")], "PLUS pointwise"),
    ("haar", [("return np.concatenate(bands, axis=1) / 2", "return np.concatenate(bands, axis=1) / 4")],
     "divide by 2, not 4"),
    ("haar", [("return np.concatenate(bands, axis=1) / 2",
               "return np.stack(bands, axis=2).reshape(x.shape[0], -1, *a.shape[2:]) / 2")], "band-major"),
    ("slicesamp", [("x6.transpose(0, 1, 3, 5, 2, 4)", "x6.transpose(0, 3, 5, 1, 2, 4)")], "slice channel order"),
    ("slicesamp", [("x6.transpose(0, 1, 3, 5, 2, 4)", "x6.transpose(0, 1, 5, 3, 2, 4)")], "i varies slower"),
    ("fr_schedule", [("max(k_target, round(k))", "max(k_target, int(k))")], "NEAREST"),
    ("fr_schedule", [('    if decay == "linear":', '    if decay != "linear":')], "equal RATIOS"),
    ("softmax_ce", [("logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))",
                     "logp = np.log(np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True))")], "log-sum-exp"),
    # the capstone: a broken piece fails before any training, with its hint
    ("capstone", [('w[:, :, i, j])\n            dw[', 'w[:, :, kh - 1 - i, kw - 1 - j])\n            dw[')],
     "UNFLIPPED kernel"),
    ("capstone", [("return dy * (x > 0)", "return dy * (x >= 0)")], "use x > 0"),
    ("capstone", [("velocity = momentum * velocity + grad", "velocity = grad")], "keep the velocity"),
]
TRAINS = {"capstone"}  # its solution trains LeNet-5 on MNIST: tests/test_exercises_capstone.py, on a small budget


def _grade(exercise, path: Path):
    """Grade in-process, showing the path as the command line does (relative, short)."""
    return grade(exercise, path, shown=f"exercises/{path.name}")


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.py"
    path.write_text(text)
    return path


def _edited(name: str, edits: list[tuple[str, str]]) -> str:
    text = exercises.get(name).solution()
    for old, new in edits:  # the last occurrence: the code, after the docstrings
        before, found, after = text.rpartition(old)
        assert found, f"{name}: the edit target {old!r} is not in the solution"
        text = before + new + after
    return text


def _fits(text: str) -> None:
    too_long = [line for line in text.splitlines() if len(line) > WIDTH]
    assert not too_long, too_long


def test_at_least_24_exercises_in_course_order():
    names = exercises.names()
    assert len(names) >= 24 and len(set(names)) == len(names)
    chapters = [e.chapter for e in exercises.EXERCISES]
    assert chapters == sorted(chapters)
    assert exercises.for_chapter(6) == ["conv2d_dx", "conv2d_dw", "conv2d_dx_strided"]
    assert exercises.for_chapter(15) == ["early_stopping", "capstone"]
    assert names[-1] == "capstone"
    assert exercises.for_chapter(5) == ["conv_matrix"]
    assert sorted(n for c in range(1, 16) for n in exercises.for_chapter(c)) == sorted(names)


@pytest.mark.parametrize("name", [n for n in exercises.names() if n not in TRAINS])
def test_stub_fails_and_solution_passes(name, tmp_path, capsys):
    """The file `start` writes fails; the file `solution --write` writes passes."""
    exercise = exercises.get(name)
    assert main(["exercise", "start", name, "--dir", str(tmp_path)]) == 0
    stub = _grade(exercise, tmp_path / f"{name}.py")
    assert not stub.ok
    assert "not written yet" in stub.text() and "NotImplementedError" in stub.text()
    assert main(["exercise", "solution", name, "--write", "--dir", str(tmp_path)]) == 2  # theirs: kept
    assert main(["exercise", "solution", name, "--write", "--overwrite", "--dir", str(tmp_path)]) == 0
    assert "kept as" in capsys.readouterr().out  # the learner's stub is kept aside, not destroyed
    solved = _grade(exercise, tmp_path / f"{name}.py")
    assert solved.ok, solved.text()
    assert any(r.kind == "values" for r in solved.rows)
    assert solved.passed == len(solved.rows) >= 4
    _fits(stub.text())
    _fits(solved.text())
    assert main(["exercise", "solution", name]) == 0
    _fits(capsys.readouterr().out)  # the whole reference, within 80 columns


@pytest.mark.parametrize("name", exercises.names())
def test_solution_examples_are_true(name, tmp_path):
    """The worked examples in the docstrings are doctests of the solution."""
    path = _write(tmp_path, name, exercises.get(name).solution())
    spec = importlib.util.spec_from_file_location(f"solution_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


def test_backward_exercises_run_the_gradient_checker(tmp_path):
    for name in ("linear", "activations", "softmax_ce", "conv2d_dx", "conv2d_dw", "max_pool",
                 "avg_pool_backward", "batch_norm", "dct_weight"):
        report = _grade(exercises.get(name), _write(tmp_path, name, exercises.get(name).solution()))
        assert any(r.kind == "gradcheck" and r.status == "PASS" for r in report.rows), name


def test_every_exercise_names_the_engine_code_it_is_graded_against():
    for e in exercises.EXERCISES:
        locations = command._engine_locations(e)
        assert len(locations) == len(e.engine) >= 1
        assert all(re.fullmatch(r"  (minicnn|tutorials)/[\w/]+\.py:\d+  [\w.]+", line) for line in locations), \
            locations


def test_every_exercise_has_two_typical_mistakes_covered():
    counts = {n: 0 for n in exercises.names()}
    for name, _, _ in WRONG:
        counts[name] += 1
    assert min(counts.values()) >= 2, counts


@pytest.mark.parametrize("name, edits, hint", WRONG, ids=[f"{w[0]}-{i}" for i, w in enumerate(WRONG)])
def test_typical_wrong_solution_fails_with_its_hint(name, edits, hint, tmp_path):
    report = _grade(exercises.get(name), _write(tmp_path, name, _edited(name, edits)))
    assert not report.ok
    assert hint in report.hint, report.text()
    text = report.text()
    assert "first failure:" in text and "hint:" in text
    _fits(text)


def test_failure_names_worst_element_expected_and_got(tmp_path):
    text = _grade(exercises.get("conv2d_dx"),
                 _write(tmp_path, "conv2d_dx", _edited("conv2d_dx", [("[:, :, ::-1, ::-1]", "")]))).text(details=True)
    assert re.search(r"dx: worst element at index \(\d+, \d+, \d+, \d+\): expected -?[\d.]+, got -?[\d.]+", text)
    assert "FAIL  values     conv2d_input_grad: dy (1,1,2,2)" in text
    assert "skip  gradcheck" in text  # the gradient check waits until the values are right


def test_gradient_check_catches_a_backward_the_value_cases_miss(tmp_path):
    """A backward that is right on the graded shapes but wrong elsewhere is caught by gradcheck."""
    text = _edited("batch_norm", [("    return dx, dgamma, dbeta\n",
                                   "    if x.shape == (3, 2, 2, 3):\n        dx = dx * 1.01\n"
                                   "    return dx, dgamma, dbeta\n")])
    report = _grade(exercises.get("batch_norm"), _write(tmp_path, "batch_norm", text))
    assert not report.ok
    assert "FAIL  gradcheck" in report.text() and "max relative error" in report.text()


# ---- files that misbehave ------------------------------------------------------------------


def test_learner_exception_shows_their_traceback_only(tmp_path):
    text = exercises.get("linear").solution().replace(
        "    dx = dy @ w  #", "    dx = helper(dy, w)  #") + "\n\ndef helper(a, b):\n    return a[99] @ b\n"
    report = _grade(exercises.get("linear"), _write(tmp_path, "linear", text))
    out = report.text()
    assert "Traceback (your code" in out and "in helper" in out and "return a[99] @ b" in out
    assert "IndexError" in out
    assert "grading.py" not in out and "minicnn/" not in out


def test_syntax_error_and_missing_function(tmp_path):
    bad = _grade(exercises.get("linear"), _write(tmp_path, "linear", "def linear_forward(x, w, b)\n    return x\n"))
    assert "did not run" in bad.text() and "SyntaxError" in bad.text() and not bad.ok
    missing = _grade(exercises.get("linear"), _write(tmp_path, "linear", "def linear_forward(x, w, b):\n    return x\n"))
    assert "defines no function linear_backward()" in missing.text() and not missing.ok


def test_wrong_dtype_shape_and_type_get_clear_messages(tmp_path):
    cases = {
        "return x @ w.T + b": ("return (x @ w.T + b).astype(np.float32)", "expected dtype float64, got float32"),
        "return x @ w.T + b\n": ("return (x @ w.T + b)[:, :-1]\n", "expected shape"),
    }
    for old, (new, message) in cases.items():
        text = exercises.get("linear").solution().replace(old, new, 1)
        report = _grade(exercises.get("linear"), _write(tmp_path, "linear", text))
        assert message in report.text() and not report.ok
    text = exercises.get("linear").solution().replace("return dx, dw, db", "return dx, dw")
    report = _grade(exercises.get("linear"), _write(tmp_path, "linear", text))
    assert "expected 3 return values (dx, dw, db), got 2 values" in report.text()
    text = exercises.get("output_size").solution().replace("// stride + 1", "/ stride + 1")
    report = _grade(exercises.get("output_size"), _write(tmp_path, "output_size", text))
    assert "expected an int, got float" in report.text()
    text = exercises.get("zigzag_mask").solution().replace("rank.reshape(shape) < k", "(rank.reshape(shape) < k) * 1")
    report = _grade(exercises.get("zigzag_mask"), _write(tmp_path, "zigzag_mask", text))
    assert "expected dtype bool, got int64" in report.text()
    text = exercises.get("linear").solution().replace("return x @ w.T + b", "x @ w.T + b")
    report = _grade(exercises.get("linear"), _write(tmp_path, "linear", text))
    assert "got None; did the function forget to `return` it?" in report.text()


def test_changing_an_input_in_place_is_reported(tmp_path):
    text = exercises.get("activations").solution().replace(
        "    return dy * (x > 0)", "    dy *= x > 0\n    return dy")
    report = _grade(exercises.get("activations"), _write(tmp_path, "activations", text))
    assert "relu_backward() changed the arrays passed in as dy (in place)" in report.text() and not report.ok


def test_printing_is_noted_but_graded(tmp_path):
    text = exercises.get("receptive_field").solution().replace("    return r\n", "    print('r is', r)\n    return r\n")
    report = _grade(exercises.get("receptive_field"), _write(tmp_path, "receptive_field", text))
    assert report.ok
    assert "your code printed 10 line(s)" in report.text() and "'r is 5'" in report.text()  # 8 fixed, 2 random


def test_hanging_file_is_stopped_with_a_clear_message(tmp_path):
    text = exercises.get("output_size").solution().replace("    extent =", "    while True:\n        pass\n    extent =")
    report = check_file(exercises.get("output_size"), _write(tmp_path, "output_size", text), timeout=3,
                        shown="exercises/output_size.py")
    assert not report.ok
    assert "was still running after 3 s and was stopped" in report.text()
    assert "loop that never ends" in report.text()


def test_child_that_ends_the_process_is_reported(tmp_path):
    path = _write(tmp_path, "linear", "import os\nos._exit(3)\n")
    report = check_file(exercises.get("linear"), path, 20, shown="exercises/linear.py")
    assert not report.ok and "stopped without a result (exit code 3)" in report.text()


def test_child_process_grades_like_in_process(tmp_path):
    good = check_file(exercises.get("linear"), _write(tmp_path, "linear", exercises.get("linear").solution()), 20)
    assert good.ok and "PASSED: linear" in good.text()
    text = exercises.get("linear").solution().replace("return x @ w.T + b", "print('hi')\n    return x @ w.T")
    bad = check_file(exercises.get("linear"), _write(tmp_path, "linear", text), 20)
    assert not bad.ok and "add the bias" in bad.hint and "printed" in bad.text()


# ---- the command line ----------------------------------------------------------------------


def test_cli_round_start_check_hint_solution(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = "ex"
    assert main(["exercise", "start", "conv2d_dx", "--dir", folder]) == 0
    path = Path(folder) / "conv2d_dx.py"
    assert "raise NotImplementedError" in path.read_text()
    path.write_text(path.read_text() + "\n# my notes\n")
    assert main(["exercise", "start", "conv2d_dx", "--dir", folder]) == 0
    assert "exists already; not overwritten" in capsys.readouterr().out
    assert path.read_text().endswith("# my notes\n")

    assert main(["exercise", "check", "conv2d_dx", "--dir", folder]) == 1
    out = capsys.readouterr().out
    assert "not written yet" in out
    _fits(out)

    hints = exercises.get("conv2d_dx").hints
    for k in range(len(hints)):
        assert main(["exercise", "hint", "conv2d_dx", "--dir", folder]) == 0
        assert f"hint {k + 1}/{len(hints)}" in capsys.readouterr().out
    assert main(["exercise", "hint", "conv2d_dx", "--dir", folder]) == 0
    assert "no more hints" in capsys.readouterr().out

    assert main(["exercise", "solution", "conv2d_dx", "--dir", folder]) == 0
    out = capsys.readouterr().out
    assert "w_back" in out and "minicnn/functional/conv_im2col.py:" in out
    _fits(out)
    assert main(["exercise", "solution", "conv2d_dx", "--dir", folder, "--write", "--overwrite"]) == 0
    assert "kept as" in capsys.readouterr().out
    assert (Path(folder) / "conv2d_dx.py.bak").read_text().endswith("# my notes\n")
    assert main(["exercise", "check", "conv2d_dx", "--dir", folder]) == 0
    assert "PASSED: conv2d_dx" in capsys.readouterr().out

    assert main(["exercise", "list", "--dir", folder]) == 0
    out = capsys.readouterr().out
    _fits(out)
    assert re.search(r"conv2d_dx +6  passed", out) and re.search(r"linear +1  not started", out)
    assert f"1/{len(exercises.names())} done" in out

    # editing a passed exercise into a failing one keeps the history
    path.write_text(exercises.get("conv2d_dx").stub())
    assert main(["exercise", "check", "conv2d_dx", "--dir", folder]) == 1
    capsys.readouterr()
    assert main(["exercise", "list", "--dir", folder]) == 0
    out = capsys.readouterr().out
    _fits(out)
    assert re.search(r"conv2d_dx +6  passed earlier, now failing", out)


def test_cli_bad_input_exits_2_with_the_list(tmp_path, capsys):
    assert main(["exercise", "check", "nope", "--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown exercise 'nope'" in err and "conv2d_dw" in err
    assert main(["exercise", "check", "linear", "--dir", str(tmp_path)]) == 2
    assert "does not exist; create it with" in capsys.readouterr().err


def test_watch_moves_on_when_the_file_passes_and_resumes(tmp_path, capsys):
    folder = tmp_path / "ex"
    folder.mkdir()
    names = exercises.names()
    last = [n for n in names if n not in TRAINS][-1]  # the capstone (passed already) would train for a minute
    state = {"exercises": {n: {"status": "passed"} for n in names if n != last}}
    (folder / ".progress.json").write_text(json.dumps(state))
    for n in names:
        if n != last:
            (folder / f"{n}.py").write_text(exercises.get(n).solution())
    saves = []

    def sleep(_seconds):  # the learner saves the solution while watch waits
        if not saves:
            saves.append(1)
            path = folder / f"{last}.py"
            path.write_text(exercises.get(last).solution())
            stat = path.stat()
            import os
            os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))

    total = len(names)
    assert command.watch(folder, timeout=20, interval=0, sleep=sleep, redraw=True) == 0
    out = capsys.readouterr().out
    assert f"{total - 1}/{total} done == {last}" in out and last == "early_stopping" and "wrote" in out and "not written yet" in out
    assert f"PASSED: {last}" in out and f"{total}/{total} done" in out
    assert out.count(command.CLEAR) == 2  # each check redraws the screen instead of appending
    _fits(out.replace(command.CLEAR, ""))
    assert command.watch(folder, timeout=20, interval=0, sleep=sleep) == 0
    assert f"{total}/{total} done" in capsys.readouterr().out


def test_watch_ctrl_c_leaves_cleanly(tmp_path, capsys):
    def interrupt(_seconds):
        raise KeyboardInterrupt

    assert command.watch(tmp_path, timeout=20, interval=0, sleep=interrupt) == 130
    out = capsys.readouterr().out
    total = len(exercises.names())
    assert f"0/{total} done == linear" in out and f"stopped at 0/{total} done" in out and "resumes here" in out
    _fits(out)
    assert (tmp_path / "linear.py").exists()
