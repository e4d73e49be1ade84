"""``bazaar train ranet``: offline training of the learned reverse auction (PyTorch, imported lazily)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .params import ParamError

SETTINGS = ("single-uniform", "tbcim")


def _positive(name: str, value: int, low: int = 1) -> int:
    if value < low:
        raise ParamError(name, f"must be at least {low}, got {value}")
    return value


def _handler(args: argparse.Namespace) -> int:
    from bazaar.mechanisms.errors import MechanismError
    from bazaar.mechanisms.ranet.training import TrainConfig, train

    _positive("sellers", args.sellers)
    _positive("iterations", args.iterations)
    if args.sellers > 12:
        raise ParamError("sellers", "at most 12 sellers (the exact VCG baseline enumerates 2^S sets)")
    out = Path(args.out)
    if out.suffix != ".npz":
        raise ParamError("out", "the weights file must end in .npz")
    if not out.parent.exists():
        raise ParamError("out", f"folder {out.parent} does not exist")
    if args.variant == "monotone":
        return _train_monotone(args, out)
    try:
        hidden = tuple(int(h) for h in args.hidden.split(",")) if args.hidden else TrainConfig.hidden
    except ValueError as err:
        raise ParamError("hidden", f"comma-separated integers, got {args.hidden!r}") from err
    if not hidden or min(hidden) < 1:
        raise ParamError("hidden", "comma-separated positive layer widths, e.g. 32,32")
    cfg = TrainConfig(
        iterations=args.iterations,
        seed=args.seed,
        hidden=hidden,
        batch=_positive("batch", args.batch),
        log_every=_positive("log-every", args.log_every),
        lr=args.lr,
        misreport_steps=_positive("misreport-steps", args.misreport_steps, 0),
        misreport_grid=_positive("misreport-grid", args.misreport_grid, 0),
        lambda_init=args.lambda_init,
        rho_every=_positive("rho-every", args.rho_every),
        rho_increment=args.rho_increment,
    )
    init = None
    if args.init:
        from bazaar.mechanisms.ranet import RANet

        try:
            init = RANet.load(args.sellers, args.setting, args.init)
        except MechanismError as err:
            raise ParamError("init", str(err)) from err
    log_path = Path(args.log) if args.log else out.with_suffix(".log.jsonl")
    records: list[dict[str, float]] = []
    try:
        with log_path.open("w") as fh:

            def on_log(rec: dict[str, float]) -> None:
                records.append(rec)
                fh.write(json.dumps(rec) + "\n")
                fh.flush()

            net, _ = train(args.setting, args.sellers, cfg, progress=not args.quiet, on_log=on_log, init=init)
    except MechanismError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    net.save(out)
    doc = {"weights": str(out), "log": str(log_path), "final": records[-1]}
    if args.json:
        print(json.dumps(doc))
    else:
        from .output import summary_lines

        print("\n".join(summary_lines(f"RANet weights written to {out} (training log: {log_path})",
                                       {"final checkpoint": records[-1]})))
    return 0


def _train_monotone(args: argparse.Namespace, out: Path) -> int:
    """``--variant monotone``: CMA-ES on the truthful-by-construction auction (docs/models/tbcim-auction.md)."""
    from bazaar.mechanisms.errors import MechanismError
    from bazaar.mechanisms.ranet.monotone_training import MonotoneConfig, train_monotone

    cfg = MonotoneConfig(seed=args.seed, samples=_positive("samples", args.samples),
                         evaluations=_positive("evaluations", args.evaluations))
    try:
        net, log = train_monotone(args.setting, args.sellers, cfg, progress=not args.quiet)
    except MechanismError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    net.save(out)
    print(json.dumps({"weights": str(out), "final": log[-1] if log else net.meta["final"]}))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``ranet`` to ``bazaar train``."""
    p = subparsers.add_parser(
        "ranet",
        help="train RANet (augmented Lagrangian with misreport search); needs PyTorch",
        description="Train the learned reverse auction of market tbcim and write numpy weights (.npz). "
        "A JSON-lines training log (utility, regret, lambda, rho per checkpoint) goes next to it.",
    )
    p.add_argument("--sellers", type=int, required=True, help="number of sellers S (1..12)")
    p.add_argument("--setting", choices=SETTINGS, required=True, help="the auction setting to train for")
    p.add_argument("--iterations", type=int, default=6000, help="weight updates (default 6000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the weights and the training draws (default 0)")
    p.add_argument("--out", required=True, help="weights file, FILE.npz")
    p.add_argument("--log", help="training log (JSON lines; default FILE.log.jsonl)")
    p.add_argument("--json", action="store_true", help="print the result (weights, log, final checkpoint) as JSON")
    p.add_argument("--hidden", default="", help="hidden layer widths, e.g. 32,32 (default: TrainConfig)")
    p.add_argument("--batch", type=int, default=128, help="bid profiles per weight update (default 128)")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    p.add_argument("--misreport-steps", type=int, default=10, help="R, misreport ascent steps (default 10)")
    p.add_argument("--misreport-grid", type=int, default=8, help="coarse misreport grid points (0: off)")
    p.add_argument("--lambda-init", type=float, default=5.0, help="initial Lagrange multipliers")
    p.add_argument("--rho-every", type=int, default=10000, help="iterations between rho increments")
    p.add_argument("--rho-increment", type=float, default=1.0,
                   help="added to rho every --rho-every iterations (default 1)")
    p.add_argument("--init", help="continue training from these weights (.npz)")
    p.add_argument("--log-every", type=int, default=250, help="iterations between log records (default 250)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--variant", choices=("ranet", "monotone"), default="ranet",
                   help="ranet (default, needs PyTorch) or monotone (truthful by construction; CMA-ES, needs cma)")
    p.add_argument("--samples", type=int, default=8000, help="monotone: training profiles (default 8000)")
    p.add_argument("--evaluations", type=int, default=2000, help="monotone: CMA-ES evaluations (default 2000)")
    p.set_defaults(func=_handler)
