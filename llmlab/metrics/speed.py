"""Inference speed: time to first token, per-token latency, throughput, peak memory.

A generation run is a stream of tokens. With t_0 the start and t_1 .. t_n the moments tokens 1 .. n
come out:

    time to first token (TTFT) = t_1 - t_0              prefill of the prompt + the first step
    per-token latency          = t_i - t_{i-1}, i >= 2   one decode step each (median and p90)
    throughput                 = n / (t_n - t_0)         tokens per second, for the whole run

``speed_metrics`` computes them from one run's readings (the median latency; NaN when n = 1).

``measure_generation`` reports each figure as the median over ``repeats`` runs, after ``warmup`` runs that are not counted (the
first run pays for memory allocation, kernel selection and cold caches). On CUDA, kernels run
asynchronously: the clock is read only after ``torch.cuda.synchronize()``.
"""
from __future__ import annotations

import math
import resource
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass

import torch

from llmlab import validate


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0 <= q <= 100) with linear interpolation between order statistics, as
    ``numpy.percentile``'s default."""
    q = validate.real("q", q, minimum=0, maximum=100)
    if isinstance(values, (str, bytes)):
        raise TypeError(f"values must be a sequence of numbers, got {type(values).__name__}")
    try:
        xs = sorted(float(v) for v in values)
    except (TypeError, ValueError) as error:
        raise TypeError(f"values must be a sequence of numbers, got {values!r:.80}") from error
    if not xs:
        raise ValueError("values is empty: need at least one number")
    if any(math.isnan(v) for v in xs):
        raise ValueError("values contain NaN")
    pos = (len(xs) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def _steps(stamps: Sequence[float]) -> list[float]:
    """The decode steps of one run: t_i - t_{i-1} for i >= 2 (stamps = [t_0, t_1, ..., t_n])."""
    return [b - a for a, b in zip(stamps[1:], stamps[2:])]


def speed_metrics(t_start: float, token_times: Sequence[float]) -> tuple[float, float, float]:
    """(TTFT, median per-token latency, throughput) of one run, from its clock readings in seconds:
    ``t_start`` = t_0, the request, and ``token_times`` = [t_1, ..., t_n], the moments tokens 1 .. n
    came out (in order, none before t_0, the last after it).

    TTFT = t_1 - t_0; the latency is the median of t_i - t_{i-1} over i = 2 .. n (the mean of the two
    middle values for an even count; NaN when n = 1: no decode step to time); throughput = n / (t_n - t_0)
    tokens per second. Python floats.
    """
    t_start = validate.real("t_start", t_start)
    if isinstance(token_times, (str, bytes)) or not isinstance(token_times, (list, tuple)):
        raise TypeError(f"token_times must be a list of clock readings in seconds, got {type(token_times).__name__}")
    if not token_times:
        raise ValueError("token_times is empty: need the time of at least one token")
    times = [validate.real(f"token_times[{i}]", t) for i, t in enumerate(token_times)]
    if times[0] < t_start:
        raise ValueError(f"token_times[0] must be >= t_start {t_start}, got {times[0]}: no token comes before the request")
    if any(b < a for a, b in zip(times, times[1:])):
        raise ValueError("token_times must be in increasing order (the moments the tokens came out, in turn)")
    if times[-1] <= t_start:
        raise ValueError(f"token_times[-1] must be > t_start {t_start}, got {times[-1]}: the run took no time")
    steps = _steps([t_start, *times])
    return (times[0] - t_start, statistics.median(steps) if steps else math.nan,
            len(times) / (times[-1] - t_start))


def peak_rss_mib() -> float:
    """The process's peak resident memory so far, in MiB (it never goes down: compare runs made in
    separate processes, or the growth across one run)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux


@dataclass(frozen=True)
class SpeedReport:
    """Medians over the repeats; latencies in seconds, memory in MiB."""

    ttft_s: float
    latency_median_s: float
    latency_p90_s: float
    tokens_per_s: float
    n_tokens: int
    peak_memory_mib: float

    def __post_init__(self):
        validate.real("ttft_s", self.ttft_s, minimum=0)
        for name in ("latency_median_s", "latency_p90_s"):  # NaN when a run gave a single token: no step to time
            value = getattr(self, name)
            if not (isinstance(value, float) and math.isnan(value)):
                validate.real(name, value, minimum=0)
        validate.positive_float("tokens_per_s", self.tokens_per_s)
        validate.size("n_tokens", self.n_tokens)
        validate.real("peak_memory_mib", self.peak_memory_mib, minimum=0)

    def row(self) -> dict[str, float]:
        return asdict(self)


def _sync(device: torch.device | str | None) -> None:
    if device is not None and torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def measure_generation(
    generate: Callable[[], Iterable[object]],
    warmup: int = 1,
    repeats: int = 3,
    device: torch.device | str | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> SpeedReport:
    """Time ``generate()``, a fresh iterator of new tokens per call (e.g. a generator function that
    yields each token as soon as it is chosen), ``warmup + repeats`` times.

    Peak memory is ``torch.cuda.max_memory_allocated`` on CUDA (reset before the timed runs) and the
    process's peak RSS on the CPU.
    """
    warmup, repeats = validate.size("warmup", warmup, minimum=0), validate.size("repeats", repeats)
    if not callable(generate):
        raise TypeError(f"generate must be a callable that returns an iterator of tokens, got {type(generate).__name__}")
    if not callable(clock):
        raise TypeError(f"clock must be a callable that returns the time in seconds, got {type(clock).__name__}")
    device = validate.device("device", device, allow_none=True)
    cuda = device is not None and device.type == "cuda"
    runs = []
    for i in range(warmup + repeats):
        if cuda and i == warmup:
            torch.cuda.reset_peak_memory_stats(device)
        _sync(device)
        stamps = [clock()]
        for _ in generate():
            _sync(device)
            stamps.append(clock())
        if len(stamps) < 2:
            raise ValueError("generate() produced no token")
        if i >= warmup:
            runs.append(stamps)
    per_run = [speed_metrics(s[0], s[1:]) for s in runs]  # (ttft, latency, throughput) of each run
    steps = [step for stamps in runs for step in _steps(stamps)]  # every run's decode steps, pooled
    return SpeedReport(
        ttft_s=statistics.median(ttft for ttft, _, _ in per_run),
        latency_median_s=statistics.median(steps) if steps else math.nan,
        latency_p90_s=percentile(steps, 90) if steps else math.nan,
        tokens_per_s=statistics.median(tps for _, _, tps in per_run),
        n_tokens=len(runs[-1]) - 1,
        peak_memory_mib=torch.cuda.max_memory_allocated(device) / 2**20 if cuda else peak_rss_mib(),
    )


def speed_table(reports: dict[str, SpeedReport]) -> str:
    """A fixed-width text table, one row per named report, fastest-reading units (ms, tok/s, MiB)."""
    if not isinstance(reports, dict):
        raise TypeError(f"reports must be a dict of named SpeedReports, got {type(reports).__name__}")
    if not reports:
        raise ValueError("reports is empty: no report to tabulate")
    for name, r in reports.items():
        if not isinstance(r, SpeedReport):
            raise TypeError(f"reports[{name!r}] must be a SpeedReport, got {type(r).__name__}")
    head = f"{'':24} {'TTFT ms':>9} {'ms/token':>9} {'p90 ms':>8} {'tok/s':>8} {'tokens':>7} {'peak MiB':>9}"
    lines = [head]
    for name, r in reports.items():
        lines.append(f"{name[:24]:24} {r.ttft_s * 1e3:9.1f} {r.latency_median_s * 1e3:9.2f} "
                     f"{r.latency_p90_s * 1e3:8.2f} {r.tokens_per_s:8.1f} {r.n_tokens:7d} {r.peak_memory_mib:9.0f}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ roofline


def decode_bytes_per_token(weight_bytes: int, n_layers: int, n_kv_heads: int, head_dim: int,
                           context_len: int, kv_bytes_per_element: int = 4) -> int:
    """Bytes one decode step must read: every weight once, plus the cached keys and values of the
    context, 2 (K and V) * n_layers * n_kv_heads * head_dim * context_len elements."""
    validate.positive_int("weight_bytes", weight_bytes)  # no upper bound: a large model's weights take terabytes
    for name, value in (("n_layers", n_layers), ("n_kv_heads", n_kv_heads), ("head_dim", head_dim)):
        validate.size(name, value)
    validate.size("context_len", context_len, minimum=0)
    validate.integer("kv_bytes_per_element", kv_bytes_per_element, 1, 8)  # float64 at most
    return weight_bytes + 2 * n_layers * n_kv_heads * head_dim * context_len * kv_bytes_per_element


def bandwidth_bound(bytes_per_token: float, bandwidth: float) -> float:
    """The roofline of decoding: tokens/s if the step did nothing but stream its bytes at
    ``bandwidth`` bytes/s (compute and overhead free)."""
    bytes_per_token = validate.positive_float("bytes_per_token", bytes_per_token)
    bandwidth = validate.positive_float("bandwidth", bandwidth)
    return bandwidth / bytes_per_token


def measure_bandwidth(n_bytes: int = 256 * 2**20, repeats: int = 5, device: torch.device | str = "cpu") -> float:
    """Memory bandwidth in bytes/s, from the best of ``repeats`` copies of an ``n_bytes`` buffer (a
    copy reads and writes each byte: 2 n_bytes moved). Far larger than the caches, so it is DRAM."""
    n_bytes = validate.integer("n_bytes", n_bytes, minimum=4, maximum=2**36)
    repeats = validate.size("repeats", repeats)
    device = validate.device("device", device)
    src = torch.ones(n_bytes // 4, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    best = math.inf
    for _ in range(repeats + 1):
        _sync(device)
        t = time.perf_counter()
        dst.copy_(src)
        _sync(device)
        best = min(best, time.perf_counter() - t)
    return 2 * src.numel() * 4 / best
