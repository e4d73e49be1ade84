"""One resolver for ``--scenario`` and ``--params``: a shipped name or a path.

A reference that names an existing file is that file. Otherwise a bare name (no folder part, with or without
``.toml``) is looked up among the files shipped inside the installed package (``bazaar.deploy``), so
``--params hierarchical-small`` and ``--scenario ai-bazaar`` work from a wheel, outside the source tree.
Anything else is returned as the path it names, and reading it gives the usual "does not exist" error.
"""

from __future__ import annotations

from pathlib import Path

from bazaar.deploy import shipped_file

from .params import ParamError


def resolve(ref: str | Path, kind: str, key: str) -> Path:
    """The file a ``--scenario`` (``kind="scenario"``) or ``--params`` (``kind="params"``) value names.

    Args:
        ref: a path, or the name of a shipped file of that kind.
        kind: ``"scenario"`` or ``"params"`` (see :data:`bazaar.deploy.FOLDERS`).
        key: the option or key named in errors (e.g. ``"--params"``).

    Raises:
        ParamError: naming ``key``, when ``ref`` is a bare name (no folder, no suffix but ``.toml``) that is
            neither a file nor shipped; the message lists the shipped names.
    """
    path = Path(ref)
    if path.is_file():
        return path
    text = str(ref)
    bare = "/" not in text and path.suffix in ("", ".toml")
    if not bare:
        return path
    try:
        return shipped_file(kind, text)
    except FileNotFoundError as err:
        if path.suffix:  # "x.toml": report the missing file, as for any path
            return path
        raise ParamError(key, f"no file {text!r} here and {err}") from err
