"""Training (needs torch): the exported numpy network reproduces the torch forward pass; a short run works."""

from __future__ import annotations

import numpy as np
import pytest

from bazaar.mechanisms.errors import MechanismError
from bazaar.mechanisms.ranet import RANet, get_setting
from bazaar.mechanisms.ranet.training import TrainConfig, _export, _Model, train


@pytest.mark.parametrize("setting", ["single-uniform", "tbcim"])
def test_numpy_forward_matches_torch(setting: str) -> None:
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    st = get_setting(setting)
    model = _Model(st, 4, (8, 8), torch)
    net = RANet(st, 4, _export(model.alloc), _export(model.pay))
    costs, prof = st.sample(np.random.default_rng(0), 32, 4)
    z, p = net.allocate(costs, prof)
    f32 = torch.float32
    prof_t = None if prof is None else torch.as_tensor(prof, dtype=f32)
    with torch.no_grad():
        zt, pt = model.outcome(torch.as_tensor(costs, dtype=f32), prof_t)
        vt = model.ts.value(zt, prof_t)
    np.testing.assert_allclose(z, zt.numpy(), atol=1e-5)
    np.testing.assert_allclose(p, pt.numpy(), atol=1e-5)
    np.testing.assert_allclose(st.value(z, prof), vt.numpy(), atol=1e-5)


def test_short_training_run_logs_and_improves_regret_bookkeeping() -> None:
    pytest.importorskip("torch")
    cfg = TrainConfig(iterations=40, batch=32, train_size=256, log_every=20, hidden=(8,), misreport_steps=2,
                      misreport_grid=4, lagrange_every=10, rho_every=20)
    records: list[dict[str, float]] = []
    net, log = train("single-uniform", 2, cfg, on_log=records.append)
    assert [r["iteration"] for r in log] == [20.0, 40.0]
    assert records == log
    assert log[-1]["rho"] == 3.0  # rho raised at 20 and 40
    assert all(r["regret"] >= 0 for r in log)
    assert net.sellers == 2 and net.meta["config"]["iterations"] == 40
    z, p = net.allocate(np.array([[0.2, 0.7]]))
    assert np.all(p >= z * np.array([0.2, 0.7]) - 1e-12)


def test_bad_configuration_is_rejected() -> None:
    with pytest.raises(MechanismError):
        TrainConfig(batch=0).check()
    with pytest.raises(MechanismError):
        TrainConfig(batch=512, train_size=256).check()
    with pytest.raises(MechanismError):
        TrainConfig(hidden=()).check()


def test_warm_start_continues_from_the_given_weights() -> None:
    pytest.importorskip("torch")
    cfg = TrainConfig(iterations=10, batch=16, train_size=64, log_every=5, hidden=(4,), misreport_steps=1,
                      misreport_grid=2)
    first, _ = train("single-uniform", 2, cfg)
    second, log = train("single-uniform", 2, TrainConfig(**{**cfg.__dict__, "lr": 1e-12}), init=first)
    bids = np.random.default_rng(0).random((20, 2))
    # with a vanishing learning rate the continued network is the one it started from
    np.testing.assert_allclose(second.allocate(bids)[0], first.allocate(bids)[0], atol=1e-6)
    assert len(second.meta["log"]) == len(first.meta["log"]) + len(log)
    with pytest.raises(MechanismError, match="layer widths"):
        train("single-uniform", 2, TrainConfig(**{**cfg.__dict__, "hidden": (3,)}), init=first)
