"""The ``[mechanism]`` table of a scenario that names an offline solver's parameter file: check the table,
find the file (relative to the scenario, or shipped) and load it with the solver's own loader, so the network
and ``bazaar solve`` read the same input. Every error names its dotted key and the file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..params import Field, ParamError, check_params

if TYPE_CHECKING:
    from ..scenario import Scenario


def load_mechanism(scenario: Scenario, fields: tuple[Field, ...], loader: Callable[[str], Any]
                   ) -> tuple[dict[str, Any], Any, Path]:
    """``(checked [mechanism] values, the loaded parameter file, its path)``; the file is the ``params`` key.

    Raises:
        ParamError: naming ``mechanism.<key>``, or ``mechanism.params.<key>`` for the file's keys.
    """
    try:
        values = check_params(dict(scenario.market), fields)
    except ParamError as err:
        raise ParamError(f"mechanism.{err.key}", str(err).split(": ", 1)[-1]) from err
    path = scenario.resolve_file(values["params"], "mechanism.params")
    try:
        params = loader(str(path))
    except ParamError as err:
        raise ParamError(f"mechanism.params.{err.key}" if err.key else "mechanism.params",
                         f"{str(err).split(': ', 1)[-1]} (in {path})") from err
    return values, params, path
