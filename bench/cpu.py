"""CPU time spent by the processes of a benchmark run, from /proc (Linux): what a figure cost the machine.

A throughput goal in requests per second is also a CPU budget: with N cores and C microseconds of CPU per
request across server, database and load generator, no run can exceed N * 1e6 / C requests per second.
Printing C beside the rate tells a slow machine from a slow program.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_seconds(pid: int) -> float:
    """User + system CPU seconds of one process (all its threads); 0 where /proc is not there."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def named_seconds(name: str) -> float:
    """CPU seconds of every process with this command name (the database server's backends and helpers)."""
    total = 0.0
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else []:
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == name:
                    total += process_seconds(int(entry.name))
            except OSError:
                continue  # gone meanwhile
    return total


@dataclass
class CpuMeter:
    """Sums, over the blocks it measures, the CPU of a server process, of the named database processes and
    of this process (the load generator), and the requests answered."""

    server_pid: int
    database: str | None = None  # "postgres", or None for an embedded database (its work is the server's)
    seconds: dict[str, float] = field(default_factory=lambda: {"server": 0.0, "database": 0.0, "loadgen": 0.0})
    requests: int = 0

    def _now(self) -> dict[str, float]:
        return {
            "server": process_seconds(self.server_pid),
            "database": named_seconds(self.database) if self.database else 0.0,
            "loadgen": time.process_time(),
        }

    def measure(self) -> _Block:
        return _Block(self)

    def report(self) -> dict[str, float]:
        """Microseconds of CPU per request by whom, and two bounds no run reaches: the rate all cores of this
        machine could carry at that cost if nothing ever waited, and the rate at which the server process
        alone would fill one core (a Python server runs its Python on one core at a time: the GIL)."""
        if not self.requests:
            return {}
        per = {who: round(s * 1e6 / self.requests, 1) for who, s in self.seconds.items()}
        cores = os.cpu_count() or 1
        return {
            **per,
            "cores": cores,
            "all_cores_rps": round(cores * 1e6 / sum(per.values())),
            "server_one_core_rps": round(1e6 / per["server"]) if per["server"] else 0,
        }


class _Block:
    def __init__(self, meter: CpuMeter) -> None:
        self.meter = meter
        self.start: dict[str, float] = {}

    def __enter__(self) -> _Block:
        self.start = self.meter._now()
        return self

    def __exit__(self, *exc: object) -> None:
        end = self.meter._now()
        for who, seconds in end.items():
            self.meter.seconds[who] += seconds - self.start[who]

    def answered(self, requests: int) -> None:
        self.meter.requests += requests
