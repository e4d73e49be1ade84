"""An edge device: offers its compute shares and data units to the pool, and moves its prices as the pool's
regulation says — only in the direction of its gap, never past the rule's step (it checks). With the declared
protocol it checks its whole price path at once and signs its final price (``outcome``)."""

from __future__ import annotations

from typing import Any

from bazaar.mechanisms.collab.agents import make_agent
from bazaar.mechanisms.fl.rounds import derive_seed
from bazaar.protocol import Envelope
from bazaar.protocol.envelope import now_ms
from bazaar.protocol.markets import collab as msg

from ...reasons import NodeReason
from ..app import RoleApp, on, serve
from ..context import Refuse, RequestFailed, RoleContext
from .common import POOL, CollabRole


class Device(CollabRole):
    """A seller of computing shares and data units."""

    def __init__(self, ctx: RoleContext) -> None:
        super().__init__(ctx)
        self.index = self.roster.devices.index(ctx.key.public)
        self.offer = self.cfg.sellers()[self.index]
        self.prices: dict[int, tuple[float, float]] = {}
        pricing = self.cfg.pricing()
        self.pmax = (pricing.p_max_compute, pricing.p_max_data)
        self.agent = (make_agent(self.cfg.algorithm, pricing, derive_seed(pricing.seed, 11, self.index))
                      if self.cfg.device_side else None)

    @on(msg.MSG_CALL, from_roles=(POOL,), slow=True)
    async def on_call(self, env: Envelope) -> None:
        """Offer our capacities at our starting prices. A second call for a round already called, or a call for
        an older round, changes nothing (round numbers only grow; a forged or repeated call must not reset the
        prices of the round in progress)."""
        self.from_pool(env)
        if self.ctx.key.public not in env.body["devices"]:
            return
        if env.round in self.prices or any(r > env.round for r in self.prices):
            self.ctx.events.warning("call.ignored", round=env.round, reason="wrong-round")
            return
        o = self.offer
        self.prices = {r: p for r, p in self.prices.items() if r >= env.round - 8}
        self.prices[env.round] = (o.compute_price, o.data_price)
        body = {"compute_capacity": o.compute_capacity, "compute_price": o.compute_price,
                "data_capacity": o.data_capacity, "data_price": o.data_price, "phi": o.phi, "theta": o.theta}
        timeout = max(0.1, (env.body["offer_deadline_ms"] - now_ms()) / 1000)
        try:
            await self.ctx.ask(self.roster.pool, msg.MSG_OFFER, body, round=env.round, timeout=timeout)
        except RequestFailed as err:
            self.ctx.events.warning("offer.refused", round=env.round, error=str(err)[:200])

    @on(msg.MSG_REGULATE, from_roles=(POOL,), slow=True)
    async def on_regulate(self, env: Envelope) -> None:
        """Move our prices as the rule says (checking the direction), and sign them."""
        self.from_pool(env)
        b, n, i = env.body, len(self.roster.devices), self.index
        old = self.prices.get(env.round)
        if old is None:
            return
        if len(b["compute_price"]) != n or len(b["data_price"]) != n or len(b["directions"]) != 2 * n \
                or len(b["gaps"]) != 2 * n:
            raise Refuse(NodeReason.OUT_OF_RANGE, f"prices must list {n} devices, directions and gaps {2 * n}")
        dirs = (int(b["directions"][i]), int(b["directions"][n + i]))
        if self.agent is not None:  # we price ourselves
            steps = self.agent.steps((float(b["gaps"][i]), float(b["gaps"][n + i])), dirs)
            new = tuple(min(max(p + d * s, 0.0), m) for p, d, s, m in zip(old, dirs, steps, self.pmax, strict=True))
        else:
            new = (float(b["compute_price"][i]), float(b["data_price"][i]))
        for p, q, d in zip(old, new, dirs, strict=True):
            if (q - p) * d < 0 or (d == 0 and q != p):
                self.ctx.events.warning("regulate.refused", round=env.round, iteration=b["iteration"],
                                        reason="wrong-direction")
                return
        timeout = max(0.1, (b["price_deadline_ms"] - now_ms()) / 1000)
        try:
            await self.ctx.ask(self.roster.pool, msg.MSG_PRICE, {"iteration": b["iteration"], "compute_price": new[0],
                                                                 "data_price": new[1]},
                               round=env.round, timeout=timeout)
        except RequestFailed as err:
            self.ctx.events.warning("price.refused", round=env.round, error=str(err)[:200])
            return
        self.prices[env.round] = new

    @serve(msg.MSG_OUTCOME, reply=msg.MSG_PRICE, from_roles=(POOL,))
    async def on_outcome(self, env: Envelope) -> dict[str, Any]:
        """Check our price path (it starts at our offer, stays in [0, p_max] and every move follows its gap's
        direction) and sign the final prices.

        Raises:
            Refuse: ``wrong-round`` (we did not offer in this round), ``out-of-range`` (lengths),
                ``wrong-direction``.
        """
        self.from_pool(env)
        b = env.body
        start = self.prices.get(env.round)
        if start is None:
            raise Refuse("wrong-round", "we made no offer in this round")
        paths = (b["compute_path"], b["data_path"])
        dirs = (b["compute_directions"], b["data_directions"])
        t = int(b["iteration"])
        if any(len(p) != t + 1 for p in paths) or any(len(d) != t for d in dirs):
            raise Refuse(NodeReason.OUT_OF_RANGE, f"a path of {t} iterations lists {t + 1} prices and {t} directions")
        for path, ds, first, pmax in zip(paths, dirs, start, self.pmax, strict=True):
            if float(path[0]) != first:
                raise Refuse("wrong-direction", f"the path starts at {path[0]:.6g}, our offer was {first:.6g}")
            for k, d in enumerate(ds):
                step = float(path[k + 1]) - float(path[k])
                if step * d < 0 or (d == 0 and step != 0) or float(path[k + 1]) > pmax:
                    raise Refuse("wrong-direction", f"iteration {k}: price moved from {path[k]:.6g} to "
                                                    f"{path[k + 1]:.6g} against its gap")
        return {"iteration": t, "compute_price": float(paths[0][-1]), "data_price": float(paths[1][-1])}

    def status(self) -> dict[str, Any]:
        """Role fields for ``GET /status``."""
        return {"settled_rounds": self.settled}


APP = RoleApp("device", Device)
