"""What an execution cost, by the published Cloud Run job rates.

Jobs are billed per instance for its whole lifetime, per vCPU-second and
GiB-second, rounded up to the nearest 100 ms
(https://cloud.google.com/run/pricing). The free tier is per billing account
and is not subtracted here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Rates:
    cpu_usd: float
    memory_usd: float


def billable_seconds(seconds: float) -> float:
    """Seconds rounded up to the next 100 ms."""
    return math.ceil(round(seconds * 10, 6)) / 10


def execution_cost(
    rates: Rates, vcpu: float, memory_gib: float, seconds: float, tasks: int = 1
) -> float:
    per_second = vcpu * rates.cpu_usd + memory_gib * rates.memory_usd
    return billable_seconds(seconds) * per_second * tasks


def idle_cost(
    rates: Rates, vcpu: float, cores_used: float, seconds: float, tasks: int = 1
) -> float:
    """The CPU cost of the vCPU the training did not use."""
    unused = max(vcpu - cores_used, 0.0)
    return billable_seconds(seconds) * unused * rates.cpu_usd * tasks
