"""The planner's per-call bookkeeping stays small: a planned call with unchanged counts rebuilds no machine
fingerprint, the conv entry point's candidate lookup builds no call it does not run, and the parsed
settings are remembered per raw text while the environment is still read at each call."""

from __future__ import annotations

import numpy as np
import pytest

from minicnn import runtime
from minicnn.kernels import conv as K
from minicnn.kernels import planner as planner_module
from minicnn.kernels.planner import Planner


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(planner_module.CACHE_VARIABLE, str(tmp_path / "cache"))
    monkeypatch.delenv(planner_module.PLANS_VARIABLE, raising=False)
    monkeypatch.delenv(runtime.NO_TUNE_VARIABLE, raising=False)


def test_a_planned_call_with_the_same_counts_builds_no_fingerprint(monkeypatch):
    p = Planner()
    y = np.arange(3.0)
    p.run("op|a", {"default": lambda: y, "other": lambda: y.copy()}, (1, 1))
    built = []
    real = planner_module._fingerprint
    monkeypatch.setattr(planner_module, "_fingerprint", lambda counts=None: built.append(counts) or real(counts))
    for _ in range(3):
        p.run("op|a", {"default": lambda: y, "other": lambda: y.copy()}, (1, 1))
    assert built == []
    p.run("op|a", {"default": lambda: y, "other": lambda: y.copy()}, (2, 1))  # other counts: looked at again
    assert built[:1] == [(2, 1)]


def test_plans_off_set_later_is_still_seen(monkeypatch):
    p = Planner()
    y = np.arange(3.0)
    p.run("op|a", {"default": lambda: y, "other": lambda: y.copy()}, (1, 1))
    monkeypatch.setenv(planner_module.PLANS_VARIABLE, "off")
    monkeypatch.setattr(planner_module, "_fingerprint", lambda counts=None: pytest.fail("file read with plans off"))
    p.run("op|a", {"default": lambda: y, "other": lambda: y.copy()}, (1, 1))


def test_membership_of_conv_candidates_builds_no_call(monkeypatch):
    x, w = np.zeros((2, 3, 6, 6), np.float32), np.zeros((4, 3, 3, 3), np.float32)
    candidates = K.forward_candidates(x, w, None, (1, 1), (1, 1), (1, 1), 1, (1, 1))
    monkeypatch.setattr(K.Candidates, "__getitem__", lambda self, name: pytest.fail("a call was built"))
    assert "default" in candidates and "no such kernel" not in candidates


def test_a_remembered_count_follows_the_variable_and_a_bad_text_is_refused_each_time(monkeypatch):
    monkeypatch.setattr(runtime, "_workers", None)
    for value, expected in (("2", 2), ("3", 3), ("2", 2)):
        monkeypatch.setenv(runtime.WORKERS_VARIABLE, value)
        assert runtime.worker_count() == expected
    monkeypatch.setenv(runtime.WORKERS_VARIABLE, "-1")
    for _ in range(2):
        with pytest.raises(ValueError, match="MINICNN_WORKERS"):
            runtime.worker_count()
    monkeypatch.setattr(runtime, "_tuning", None)
    for value, expected in (("1", False), ("0", True), ("1", False)):
        monkeypatch.setenv(runtime.NO_TUNE_VARIABLE, value)
        assert runtime.tuning_enabled() is expected
