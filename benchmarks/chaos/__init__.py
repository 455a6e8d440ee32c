"""A seeded chaos run against `styx serve`, in the spirit of Jepsen: a mixed workload through the REST API,
faults at seeded moments, and a checker of the recorded history (docs/reliability.md, "Chaos runs").

| module | what |
|---|---|
| `__main__.py` | the command: `python -m benchmarks.chaos --seed S --minutes M` |
| `runner.py` | one run: start, drive, break, converge, read back, check |
| `plan.py` | the seeded plans of commands and faults |
| `workload.py` | the workflows and the commands, sent through the REST API and recorded |
| `faults.py` | the faults: actor SIGKILL, service SIGKILL + restart, `docker kill`, Redis restart and pause |
| `processes.py` | the run's own redis-server and `styx serve`, by PID |
| `ray_actors.py` | helper process: the service's actor PIDs, asked of its Ray's GCS |
| `engine.py` | the Docker Engine's own events and running lists of the service's containers |
| `history.py` | what is recorded |
| `checker.py` | the invariants: pure functions of the history (tests/chaos/test_checker.py) |
"""
