"""The layer abstraction: registration, modes, state_dict round trips. (Atomic saves: tests/test_files.py.)"""


import numpy as np
import pytest

from minicnn import core
from minicnn.core import Layer, Parameter, Sequential
from minicnn.layers import BatchNorm1D, Dropout, Linear, ReLU


def small_net():
    return Sequential(Linear(4, 8), BatchNorm1D(8), ReLU(), Dropout(0.2), Linear(8, 3))


def test_parameters_are_registered_in_assignment_order():
    net = small_net()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["0.weight", "0.bias", "1.weight", "1.bias", "4.weight", "4.bias"]
    assert net.num_parameters() == 4 * 8 + 8 + 8 + 8 + 8 * 3 + 3


def test_train_eval_propagates_to_children():
    net = small_net()
    net.eval()
    assert all(not m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())


def test_backward_adds_into_grad_and_zero_grad_clears():
    lin = Linear(3, 2).to(np.float64)
    x = np.random.default_rng(0).standard_normal((5, 3))
    dy = np.ones((5, 2))
    lin(x)
    lin.backward(dy)
    first = lin.weight.grad.copy()
    lin(x)
    lin.backward(dy)
    np.testing.assert_allclose(lin.weight.grad, 2 * first)
    lin.zero_grad()
    assert not np.any(lin.weight.grad)


def test_state_dict_round_trip_through_npz_is_exact(tmp_path):
    net = small_net()
    net(np.random.default_rng(0).standard_normal((16, 4)).astype(np.float32))  # moves BN buffers
    path = tmp_path / "net.npz"
    net.save(path)
    core.manual_seed(99)
    other = small_net()
    other.load(path)
    a, b = net.state_dict(), other.state_dict()
    assert a.keys() == b.keys()
    assert set(a) >= {"1.running_mean", "1.running_var"}
    for k in a:
        assert a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]), k
    x = np.random.default_rng(1).standard_normal((7, 4)).astype(np.float32)
    net.eval()
    other.eval()
    assert np.array_equal(net(x), other(x))


def test_load_state_dict_rejects_wrong_shape_and_names():
    net = small_net()
    state = net.state_dict()
    state["0.weight"] = np.zeros((8, 5), np.float32)
    with pytest.raises(ValueError, match=r"'0.weight' expected shape \(8, 4\), got \(8, 5\)"):
        net.load_state_dict(state)
    state = net.state_dict()
    del state["4.bias"]
    with pytest.raises(ValueError, match="missing.*4.bias"):
        net.load_state_dict(state)
    state = net.state_dict()
    state["extra"] = np.zeros(1)
    with pytest.raises(ValueError, match="unexpected.*extra"):
        net.load_state_dict(state)


def test_failed_load_changes_nothing():
    net = small_net()
    before = net.state_dict()
    state = net.state_dict()
    state["0.bias"] = np.ones(8, np.float32)
    state["4.weight"] = np.zeros((1, 1), np.float32)  # wrong: whole load must be refused
    with pytest.raises(ValueError):
        net.load_state_dict(state)
    assert all(np.array_equal(before[k], v) for k, v in net.state_dict().items())


def test_to_float64_converts_parameters_and_buffers():
    net = small_net().to(np.float64)
    assert all(p.data.dtype == np.float64 and p.grad.dtype == np.float64 for p in net.parameters())
    assert net[1].running_var.dtype == np.float64


def test_sequential_rejects_non_layers():
    with pytest.raises(ValueError, match="Sequential: expected Layer objects, got int at 1"):
        Sequential(ReLU(), 3)


def test_layer_without_super_init_is_reported():
    class Broken(Layer):
        def __init__(self):
            self.w = Parameter(np.zeros(2))

    with pytest.raises(RuntimeError, match="super"):
        Broken()


def test_manual_seed_reproduces_initialisation():
    core.manual_seed(5)
    a = Linear(3, 3).weight.data.copy()
    core.manual_seed(5)
    b = Linear(3, 3).weight.data.copy()
    assert np.array_equal(a, b)


def test_replacing_a_child_keeps_its_position():
    net = Sequential(Linear(2, 3), ReLU(), Linear(3, 1))
    setattr(net, "1", Dropout(0.1))
    assert [type(m).__name__ for m in net] == ["Linear", "Dropout", "Linear"]
    assert [n for n, _ in net.named_parameters()] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    net.bias_like = Parameter(np.zeros(1))
    net.bias_like = None  # assigning a non-Parameter unregisters it
    assert "bias_like" not in dict(net.named_parameters())
