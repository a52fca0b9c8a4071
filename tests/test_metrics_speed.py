"""Speed metrics, timed with a fake clock: the arithmetic is tested, never this machine's speed."""
import math

import numpy as np
import pytest

from llmlab.metrics import speed


@pytest.mark.parametrize("values", [[3.0], [1.0, 2.0], [5.0, 1.0, 4.0, 2.0, 3.0], list(np.linspace(0, 1, 17) ** 2)])
@pytest.mark.parametrize("q", [0, 10, 50, 90, 99, 100])
def test_percentile_equals_numpy(values, q):
    assert speed.percentile(values, q) == pytest.approx(float(np.percentile(values, q)), rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("values,q", [([], 50), ([1.0], 101), ([1.0, float("nan")], 50)])
def test_percentile_rejects_bad_input(values, q):
    with pytest.raises(ValueError):
        speed.percentile(values, q)


class FakeClock:
    """Time stands still until the fake generator moves it on."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_measure_generation_ttft_latency_throughput():
    clock = FakeClock()
    calls = []

    def generate():
        calls.append(1)
        clock.now += 0.5 if len(calls) == 1 else 0.2  # the warm-up run is slower, and not counted
        yield 0
        for step in (0.1, 0.1, 0.1, 0.3):
            clock.now += step
            yield 0

    r = speed.measure_generation(generate, warmup=1, repeats=3, clock=clock)
    assert len(calls) == 4
    assert r.ttft_s == pytest.approx(0.2)
    assert r.latency_median_s == pytest.approx(0.1)
    assert r.latency_p90_s == pytest.approx(float(np.percentile([0.1, 0.1, 0.1, 0.3] * 3, 90)))
    assert r.tokens_per_s == pytest.approx(5 / 0.8)
    assert r.n_tokens == 5 and r.peak_memory_mib > 0
    assert "tok/s" in speed.speed_table({"fake": r})


def test_single_token_runs_have_no_per_token_latency():
    r = speed.measure_generation(lambda: iter([1]), warmup=0, repeats=2)
    assert r.n_tokens == 1 and math.isnan(r.latency_median_s)


@pytest.mark.parametrize("kw,exc", [(dict(repeats=0), ValueError), (dict(warmup=-1), ValueError),
                                    (dict(repeats=True), TypeError)])
def test_measure_generation_rejects_bad_arguments(kw, exc):
    with pytest.raises(exc, match=next(iter(kw))):
        speed.measure_generation(lambda: iter([1]), **kw)


def test_measure_generation_rejects_empty_and_non_callable():
    with pytest.raises(ValueError, match="no token"):
        speed.measure_generation(lambda: iter([]), warmup=0, repeats=1)
    with pytest.raises(TypeError):
        speed.measure_generation([1, 2, 3])
    with pytest.raises(ValueError):
        speed.speed_table({})


def test_speed_metrics_from_one_runs_timestamps():
    ttft, latency, throughput = speed.speed_metrics(2.0, [2.5, 2.6, 2.9, 3.0])
    assert ttft == pytest.approx(0.5) and latency == pytest.approx(0.1) and throughput == pytest.approx(4.0)
    assert speed.speed_metrics(0.0, [1.0, 2.0, 2.5, 4.5, 5.0])[1] == pytest.approx(0.75)  # even count: the two middle ones
    ttft, latency, throughput = speed.speed_metrics(1.0, [1.25])
    assert ttft == 0.25 and math.isnan(latency) and throughput == 4.0  # one token: no decode step to time
    assert speed.speed_metrics(0, (1, 1, 2)) == (1.0, 0.5, 1.5)  # a step of 0 (a clock's resolution) is a step


@pytest.mark.parametrize("args,exc,match", [
    ((0.0, []), ValueError, "token_times"), ((0.0, [2.0, 1.0]), ValueError, "order"),
    ((1.0, [0.5, 2.0]), ValueError, "t_start"), ((1.0, [1.0]), ValueError, "no time"),
    ((0.0, "12"), TypeError, "token_times"), ((0.0, [1.0, "2"]), TypeError, "token_times"),
    ((float("nan"), [1.0]), ValueError, "t_start"), ((None, [1.0]), TypeError, "t_start"),
])
def test_speed_metrics_rejects_bad_timestamps(args, exc, match):
    with pytest.raises(exc, match=match):
        speed.speed_metrics(*args)
