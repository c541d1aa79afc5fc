"""Mutation score of the machines: generated mutants of the bundled systems, judged at ``ci``.

Relay: cosmic-ray's operators over ``supervisor/system/{supervisor,worker,rules}.py`` (841
mutants). pggit: :mod:`statemodels.mutation.sql` over ``pggit.sql`` (~200). Each mutant is one
ordinary machine run at ``ci`` in its own process (no shrinking, fixed seed); survivors that are
equivalent are listed in :mod:`statemodels.mutation.triage`. Printed, never asserted.

    python benchmarks/bench_mutation.py                      # 20 per system, seed 0 (~15 min)
    python benchmarks/bench_mutation.py --full --json m.json # every mutant (weekly; hours)
    python benchmarks/bench_mutation.py pggit --sample 60 --seed 3
"""

from __future__ import annotations

import sys

from statemodels.mutation import main


def _argv(args: list[str]) -> list[str]:
    if "--full" in args:
        return [a for a in args if a != "--full"]
    return args if "--sample" in args else [*args, "--sample", "20"]


if __name__ == "__main__":
    sys.exit(main(_argv(sys.argv[1:])))
