"""Generated mutants of a bundled system's Python, made by cosmic-ray's operators.

A :class:`PySystem` names the files that are the system under test: :data:`RELAY` (the
supervisor relay) and :data:`STATUS2` (the status2 service). Both run as processes of their own,
started from the ``statemodels`` copy the test process imported.

Why cosmic-ray (and not mutmut 3): the relay under test is not imported by the test process; it
runs as separate processes (``python -I -S supervisor.py`` and one ``worker.py`` per interface;
status2 is ``python service.py``). mutmut 3 rewrites every function into a trampoline that
picks the mutant from the environment variable ``MUTANT_UNDER_TEST`` -- but ``-I`` makes the
relay ignore its environment, and its copy of the code lives in ``mutants/``, not where the
launcher starts the scripts from. cosmic-ray changes the file on disk, which is exactly what a
separate process sees.

We use cosmic-ray as a library -- its operators (``cosmic_ray.plugins``) find the positions and
``cosmic_ray.mutating.mutate_code`` makes the edit -- and never let it touch the work tree: the
package is copied to a scratch directory (:func:`scratch_copy`) and each mutant is written into
the copy (:func:`applied`), which is what the judge's ``PYTHONPATH`` points at. Its own runner
(``cosmic-ray exec``) is not used because the per-mutant time limit must kill a whole process
group (a relay and its workers), and a sample must be drawn with a fixed seed.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import attrs

from ..errors import ConfigurationError

__all__ = [
    "RELAY",
    "STATUS2",
    "SYSTEMS",
    "PyMutant",
    "PySystem",
    "applied",
    "mutants",
    "scratch_copy",
]


@attrs.frozen
class PySystem:
    """A bundled system's own code: ``files`` in ``directory`` (relative to the directory holding
    ``statemodels/``). A mutant's id is ``<file stem>:<operator>:<occurrence>``."""

    name: str
    directory: str
    files: tuple[str, ...]


#: Not ``launch.py`` (the test-side launcher, runs in the test process), ``mutants.py`` (the
#: catalogue's names) or ``__init__.py``: only what runs as the system's processes.
RELAY = PySystem(
    "relay", "statemodels/supervisor/system", ("supervisor.py", "worker.py", "rules.py")
)
STATUS2 = PySystem("status2", "statemodels/status2/system", ("service.py",))
SYSTEMS = {s.name: s for s in (RELAY, STATUS2)}
#: Operators left out: VariableReplacer/VariableInserter draw random names and values (not
#: reproducible); RemoveDecorator has nothing to remove here.
_EXCLUDED = ("core/VariableReplacer", "core/VariableInserter", "core/RemoveDecorator")


@attrs.frozen
class PyMutant:
    """One cosmic-ray mutation: ``operator`` at its ``occurrence``-th position in ``file``."""

    id: str
    file: str
    path: str  # relative to the directory holding ``statemodels/``
    operator: str
    occurrence: int
    line: int
    description: str
    text: str = ""  # the edited line, stripped


def _operators() -> list[tuple[str, object]]:
    try:
        import cosmic_ray.plugins as plugins
    except ImportError:
        raise ConfigurationError(
            "generated Python mutants need cosmic-ray; pip install 'statemodels[mutation]'"
        ) from None
    out = []
    for name in sorted(plugins.operator_names()):
        cls = plugins.get_operator(name)
        if name in _EXCLUDED or cls.arguments():
            continue
        out.append((name, cls()))
    return out


def mutants(package_root: Path, system: PySystem) -> list[PyMutant]:
    """Every mutant of ``system``'s files under ``package_root`` (the directory holding
    ``statemodels/``), in a stable order."""
    from cosmic_ray.ast import ast_nodes, get_ast_from_path

    found: list[PyMutant] = []
    for name in system.files:
        path = package_root / system.directory / name
        nodes = list(ast_nodes(get_ast_from_path(path)))
        lines = path.read_text(encoding="utf-8").splitlines()
        for op_name, op in _operators():
            positions = [p for node in nodes for p in op.mutation_positions(node)]  # type: ignore[attr-defined]
            for occurrence, (start, _end) in enumerate(positions):
                line = start[0]
                short = op_name.removeprefix("core/")
                text = lines[line - 1].strip() if line <= len(lines) else ""
                found.append(
                    PyMutant(
                        id=f"{name.removesuffix('.py')}:{short}:{occurrence}",
                        file=name,
                        path=f"{system.directory}/{name}",
                        operator=op_name,
                        occurrence=occurrence,
                        line=line,
                        description=f"{name}:{line} {short} in {text[:70]!r}",
                        text=text,
                    )
                )
    return found


@contextlib.contextmanager
def scratch_copy(source_root: Path) -> Iterator[Path]:
    """A throw-away copy of the ``statemodels`` package under ``source_root``; yields the new
    root (put it first on ``PYTHONPATH``). Removed afterwards, also on error."""
    scratch = Path(tempfile.mkdtemp(prefix="statemodels-mutation-"))
    try:
        shutil.copytree(
            source_root / "statemodels",
            scratch / "statemodels",
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        )
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@contextlib.contextmanager
def applied(root: Path, mutant: PyMutant) -> Iterator[str]:
    """Write ``mutant`` into the scratch copy at ``root``; yields a unified diff of the edit.
    The original is put back afterwards.

    Compiled files are removed before and after: a same-size edit within the same second
    (``<`` to ``>``) would otherwise be served from a stale ``.pyc`` -- the relay runs with ``-I``,
    so ``PYTHONDONTWRITEBYTECODE`` cannot be used instead. (status2's ``service.py`` runs as
    ``__main__``, which is never served from a ``.pyc``; removing them costs nothing.)
    """
    import difflib

    from cosmic_ray.mutating import mutate_code
    from cosmic_ray.plugins import get_operator

    path = root / mutant.path
    original = path.read_text(encoding="utf-8")
    mutated = mutate_code(original, get_operator(mutant.operator)(), mutant.occurrence)
    if mutated is None:
        raise ConfigurationError(f"mutant {mutant.id} no longer applies; regenerate the list")
    pycache = path.parent / "__pycache__"
    shutil.rmtree(pycache, ignore_errors=True)
    path.write_text(mutated, encoding="utf-8")
    try:
        diff = difflib.unified_diff(
            original.splitlines(), mutated.splitlines(), mutant.file, mutant.file, n=0, lineterm=""
        )
        yield "\n".join(list(diff)[2:])
    finally:
        path.write_text(original, encoding="utf-8")
        shutil.rmtree(pycache, ignore_errors=True)
