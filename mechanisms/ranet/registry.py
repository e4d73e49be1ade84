"""Settings by name."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from ..errors import MechanismError
from .settings import Setting, SingleUniform

T = TypeVar("T")

SETTING_NAMES = ("single-uniform", "tbcim")


def get_setting(name: str) -> Setting:
    """The :class:`Setting` called ``name``.

    Raises:
        MechanismError: unknown name.
    """
    if name == "single-uniform":
        return SingleUniform()
    if name == "tbcim":
        from .tbcim_setting import TbcimSetting

        return TbcimSetting()
    raise MechanismError(f"unknown RANet setting {name!r}; expected one of {', '.join(SETTING_NAMES)}")


def load_weights(read: Callable[[Path], T], file_name: str, what: str, setting: str, sellers: int,
                 path: str | Path | None) -> T:
    """Read the shipped weights ``file_name`` (or ``path``) with ``read`` and check they are for this combination.

    ``read`` returns an object with ``sellers`` and ``setting.name`` (a RANet or its monotone variant); ``what``
    names the kind in errors.

    Raises:
        MechanismError: no shipped file, or weights for another setting or seller count.
    """
    if path is None:
        from importlib import resources

        ref = resources.files("bazaar.mechanisms.ranet") / "weights" / file_name
        if not ref.is_file():
            raise MechanismError(f"no shipped {what} weights for {setting!r} with {sellers} sellers")
        with resources.as_file(ref) as p:
            net = read(p)
    else:
        net = read(Path(path))
    found: Any = net
    if found.sellers != sellers or found.setting.name != setting:
        raise MechanismError(f"weights are for {found.setting.name!r} with {found.sellers} sellers, "
                             f"not {setting!r} with {sellers}")
    return net


def read_npz(path: str | Path, what: str) -> dict[str, np.ndarray]:
    """Every array of a weights ``.npz`` (no pickles are loaded).

    Raises:
        MechanismError: unreadable file.
    """
    try:
        with np.load(Path(path), allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError) as err:
        raise MechanismError(f"cannot read {what} weights {path}: {err}") from err


def run_batched(forward: Callable[[np.ndarray, np.ndarray | None], tuple[np.ndarray, np.ndarray]], setting: Setting,
                sellers: int, bids: Any, profiles: Any) -> tuple[np.ndarray, np.ndarray]:
    """The ``allocate`` contract of RANet and its monotone variant: one profile (1-D bids) or a batch, checked by
    ``setting``, then ``forward`` on the batch; a single profile comes back 1-D.

    Raises:
        MechanismError: shapes, signs or finiteness of the input are wrong.
    """
    b = np.asarray(bids, dtype=np.float64)
    one = b.ndim == 1
    if one:
        b = b[None, :]
    prof = None if profiles is None else np.asarray(profiles, dtype=np.float64)
    if one and prof is not None and prof.ndim == 2:
        prof = prof[None]
    setting.check(b, prof, sellers)
    z, p = forward(b, prof)
    return (z[0], p[0]) if one else (z, p)
