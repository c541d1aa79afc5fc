"""Generated mutants: a mutation score for the machines, from mutants nobody hand-picked.

- :mod:`~statemodels.mutation.python`: cosmic-ray's operators over a bundled system's Python
  (:mod:`~statemodels.mutation.relay`: the relay's files; status2: its ``service.py``).
- :mod:`~statemodels.mutation.sql`: our own operator-based mutator over ``pggit.sql``.
- :mod:`~statemodels.mutation.judge`: one mutant judged by the ordinary machine run at ``ci``.
- :mod:`~statemodels.mutation.runner`: sampling, time limits, the score, JSON (``main(argv)``).
- :mod:`~statemodels.mutation.triage`: survivors found equivalent, with the reason.
"""

from .runner import Result, SystemReport, main, run_system

__all__ = ["Result", "SystemReport", "main", "run_system"]
