"""Energy and CO2 per generated token, from a measured decode time and a stated power model, or from the CPU's
own energy counters (Intel RAPL) where the operating system lets us read them.

* energy per token (J) = power (W) x seconds / tokens;
* CO2 per token (g) = energy (J) / 3.6e6 (J per kWh) x the grid's carbon intensity (g CO2e per kWh);
* the power model used when no meter is readable: P = TDP x utilisation, with utilisation = the process's CPU
  time / (wall time x logical cores). A crude upper-bound style estimate: idle power, memory and the rest of the
  machine are left out, and TDP is a thermal design figure, not a measurement.
* RAPL (``/sys/class/powercap/intel-rapl:N/energy_uj``) counts micro-joules per package and wraps around at
  ``max_energy_range_uj``; reading it usually needs root since 2020 (CVE-2020-8694).
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from llmlab import validate

J_PER_KWH = 3.6e6
RAPL_ROOT = Path("/sys/class/powercap")


def energy_per_token(seconds: float, tokens: int, watts: float) -> float:
    """Joules per token when ``tokens`` tokens took ``seconds`` seconds at an average ``watts`` watts."""
    seconds = validate.positive_float("seconds", seconds, allow_zero=True)
    tokens = validate.positive_int("tokens", tokens)
    watts = validate.positive_float("watts", watts, allow_zero=True)
    return watts * seconds / tokens


def co2_per_token(joules: float, grams_per_kwh: float) -> float:
    """Grams of CO2e for ``joules`` of electricity at a grid intensity of ``grams_per_kwh`` g/kWh."""
    joules = validate.positive_float("joules", joules, allow_zero=True)
    grams_per_kwh = validate.positive_float("grams_per_kwh", grams_per_kwh, allow_zero=True)
    return joules / J_PER_KWH * grams_per_kwh


def modelled_watts(tdp_watts: float, cpu_seconds: float, wall_seconds: float, cores: int) -> float:
    """The power model P = TDP x utilisation, utilisation = cpu_seconds / (wall_seconds x cores), capped at 1."""
    tdp_watts = validate.positive_float("tdp_watts", tdp_watts)
    cpu_seconds = validate.positive_float("cpu_seconds", cpu_seconds, allow_zero=True)
    wall_seconds = validate.positive_float("wall_seconds", wall_seconds)
    cores = validate.positive_int("cores", cores)
    return tdp_watts * min(1.0, cpu_seconds / (wall_seconds * cores))


def rapl_zones(root: str | Path = RAPL_ROOT) -> dict[str, tuple[Path, int]]:
    """{zone name: (energy_uj file, max_energy_range_uj)} of the readable RAPL package zones; {} when there are
    none or they cannot be read (no Intel/AMD RAPL, a container, no permission)."""
    root = validate.path("root", root)
    zones = {}
    for d in sorted(root.glob("intel-rapl:*")) if root.is_dir() else []:
        if d.name.count(":") != 1:  # intel-rapl:0 is a package; intel-rapl:0:0 its sub-zones
            continue
        try:
            (d / "energy_uj").read_text()
            name = (d / "name").read_text().strip()
            zones[f"{name} ({d.name})"] = (d / "energy_uj", int((d / "max_energy_range_uj").read_text()))
        except (OSError, ValueError):
            continue
    return zones


def rapl_joules(before: int, after: int, max_range_uj: int) -> float:
    """Joules between two readings of a RAPL counter (micro-joules) that wraps at ``max_range_uj``."""
    before = validate.integer("before", before, 0)
    after = validate.integer("after", after, 0)
    max_range_uj = validate.positive_int("max_range_uj", max_range_uj)
    delta = after - before if after >= before else after + max_range_uj - before
    return delta / 1e6


def measure(fn, zones: dict | None = None) -> dict:
    """Run ``fn()`` once: {"wall_s", "cpu_s", "rapl_j" (joules per readable zone, {} if none)}."""
    if not callable(fn):
        raise TypeError(f"fn must be a function of no arguments, got {type(fn).__name__}")
    zones = rapl_zones() if zones is None else zones
    if not isinstance(zones, dict):
        raise TypeError(f"zones must be a dict like rapl_zones() returns (or None), got {type(zones).__name__}")
    start = {z: int(p.read_text()) for z, (p, _) in zones.items()}
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    joules = {z: rapl_joules(start[z], int(p.read_text()), m) for z, (p, m) in zones.items()}
    return {"wall_s": wall, "cpu_s": cpu, "rapl_j": joules}


def logical_cores() -> int:
    """The cores this process may run on (its affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)
