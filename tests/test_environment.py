import pytest
import torch

import llmlab
from llmlab.course.doctor import environment_report
from llmlab.data import pydoc_text
from llmlab.models import minilm_dir, smollm2_gguf_path


def test_device_default_and_override(monkeypatch):
    monkeypatch.delenv("LLMLAB_DEVICE", raising=False)
    assert llmlab.device().type == ("cuda" if torch.cuda.is_available() else "cpu")
    monkeypatch.setenv("LLMLAB_DEVICE", "cpu")
    assert llmlab.device() == torch.device("cpu")


@pytest.mark.parametrize("value,match", [("gpu-please", "not a torch device"), ("cuda:99", "CUDA|CUDA device")])
def test_device_bad_override(monkeypatch, value, match):
    if value.startswith("cuda") and torch.cuda.device_count() > 99:
        pytest.skip("a machine with 100 GPUs")
    monkeypatch.setenv("LLMLAB_DEVICE", value)
    with pytest.raises(ValueError, match=match):
        llmlab.device()


def test_assets_are_installed():
    gguf = smollm2_gguf_path()
    assert gguf.is_file() and gguf.stat().st_size > 90e6
    assert (minilm_dir() / "model.safetensors").is_file()
    assert all(item.ok for item in environment_report() if item.required), environment_report()


def test_pydoc_splits_partition_the_topics():
    train, val, full = pydoc_text("train"), pydoc_text("val"), pydoc_text("all")
    assert 0.05 < len(val) / len(full) < 0.2
    assert len(train) + len(val) + len("\n\n") == len(full)  # every topic in exactly one split
    assert val not in train
    with pytest.raises(ValueError, match="split"):
        pydoc_text("test")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16,
                                   getattr(torch, "float8_e4m3fn", torch.float32)])
def test_all_finite_agrees_with_isfinite(dtype):
    """validate.all_finite (one min/max reduction) answers what torch.isfinite(x).all() answers, wherever the
    NaN or inf sits, for every float dtype (float8 through its fallback) and for integer and empty tensors."""
    from llmlab import validate

    x = torch.randn(3, 1000).to(dtype)
    assert validate.all_finite(x)
    for bad in (float("nan"), float("inf"), float("-inf")):
        for where in ((0, 0), (1, 517), (2, 999)):
            y = x.clone()
            y[where] = bad
            assert validate.all_finite(y) == bool(torch.isfinite(y.float()).all())
    assert validate.all_finite(torch.empty(0, 4, dtype=dtype))
    assert validate.all_finite(torch.arange(5))
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        validate.all_finite([1.0, float("nan")])
