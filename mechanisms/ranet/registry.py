"""Settings by name."""

from __future__ import annotations

from ..errors import MechanismError
from .settings import Setting, SingleUniform

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
