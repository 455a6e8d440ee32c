"""`python -m benchmarks.chaos --seed S --minutes M [--store redis://...] [--runner docker]`: one chaos run;
prints the table of faults, commands, instances, containers and invariants; exits 1 on a violation."""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

from benchmarks.chaos.runner import ChaosOptions, run


def parse(argv: list[str]) -> ChaosOptions:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.chaos", description=__doc__)
    parser.add_argument("--seed", type=int, required=True, help="fixes the plan of commands and faults")
    parser.add_argument("--minutes", type=float, default=3.0, help="how long the workload and the faults last")
    parser.add_argument(
        "--store",
        metavar="URL",
        help="redis://HOST:PORT/DB of an existing Redis (keys under a prefix of the run's own; no Redis faults "
        "then). Default: a redis-server with AOF of the run's own, on a free loopback port",
    )
    parser.add_argument(
        "--runner", choices=["docker"], default="docker", help="what runs jobs (checks need containers)"
    )
    parser.add_argument("--work-dir", type=Path, help="logs, data dir, history.json (default: a new temporary dir)")
    parser.add_argument("--convergence-timeout", type=float, default=300.0, help="seconds to wait for all to end")
    parser.add_argument("--readiness-bound", type=float, default=180.0, help="seconds /readyz may take after restarts")
    parser.add_argument(
        "--fault-gap",
        type=float,
        nargs=2,
        default=[8.0, 20.0],
        metavar=("MIN", "MAX"),
        help="seconds between two faults (uniform; default 8 20)",
    )
    args = parser.parse_args(argv)
    work_dir = args.work_dir or Path(tempfile.mkdtemp(prefix=f"styx-chaos-{args.seed}-"))
    return ChaosOptions(
        seed=args.seed,
        minutes=args.minutes,
        work_dir=work_dir,
        store=args.store,
        runner=args.runner,
        convergence_timeout=args.convergence_timeout,
        readiness_bound=args.readiness_bound,
        fault_gap=(args.fault_gap[0], args.fault_gap[1]),
    )


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request otherwise
    result = run(parse(argv))
    print(result.report)
    return 1 if result.violations else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
