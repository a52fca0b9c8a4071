"""LoRA adapters: start as the identity, train only the adapters, merge to the same function."""
import pytest
import torch

from llmlab import train
from llmlab.nn import lora
from llmlab.nn.model import Decoder, DecoderConfig


def _tiny() -> Decoder:
    torch.manual_seed(0)
    return Decoder(DecoderConfig(vocab_size=64, dim=32, n_layers=2, n_heads=4, n_kv_heads=2, hidden_dim=64, max_seq_len=64))


def test_lora_linear_and_merge_agree():
    g = torch.Generator().manual_seed(0)
    W, b, A, B = (torch.randn(*s, generator=g, dtype=torch.float64) for s in [(6, 10), (6,), (2, 10), (6, 2)])
    x = torch.randn(3, 4, 10, generator=g, dtype=torch.float64)
    out = lora.lora_linear(x, W, b, A, B, alpha=4.0)
    torch.testing.assert_close(out, x @ W.T + b + 2.0 * (x @ (B @ A).T))
    torch.testing.assert_close(x @ lora.merged_weight(W, A, B, 4.0).T + b, out)


def test_add_lora_freezes_everything_else_and_starts_as_identity():
    model = _tiny()
    x = torch.randint(64, (2, 12))
    with torch.no_grad():
        before = model(x)
    names = lora.add_lora(model, ("wq", "wv"), rank=4, alpha=8)
    assert names == ["layers.0.attention.wq", "layers.0.attention.wv", "layers.1.attention.wq", "layers.1.attention.wv"]
    trainable, total = lora.count_parameters(model)
    assert trainable == 2 * (4 * (32 + 32) + 4 * (32 + 16))
    assert all(("A" in n.split(".")[-1] or "B" in n.split(".")[-1]) for n, p in model.named_parameters() if p.requires_grad)
    with torch.no_grad():
        torch.testing.assert_close(model(x), before)  # B = 0 at the start


def test_training_changes_only_adapters_and_merge_keeps_logits():
    model = _tiny()
    frozen = {k: v.clone() for k, v in model.state_dict().items()}
    lora.add_lora(model, ("wq", "wk", "wv", "wo"), rank=4, alpha=8)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    data = torch.randint(64, (300,), generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        train.train_step(model, opt, *train.get_batch(data, 4, 16, g))
    for name, p in model.named_parameters():
        if not p.requires_grad:
            key = name.replace(".base.", ".")
            torch.testing.assert_close(p, frozen[key], rtol=0, atol=0)
    x = torch.randint(64, (2, 16))
    with torch.no_grad():
        adapted = model(x)
        lora.merge_lora(model)
        merged = model(x)
    assert not any(isinstance(m, lora.LoRALinear) for m in model.modules())
    assert set(model.state_dict()) == set(frozen)
    torch.testing.assert_close(merged, adapted, rtol=1e-5, atol=1e-5)
    original = _tiny()
    original.load_state_dict(frozen)
    with torch.no_grad():
        assert not torch.allclose(merged, original(x), atol=1e-4)  # the adapters did learn something


def test_bad_targets_and_rank():
    with pytest.raises(ValueError, match="no nn.Linear named"):
        lora.add_lora(_tiny(), ("q_proj",))
    with pytest.raises(ValueError, match="rank"):
        lora.LoRALinear(torch.nn.Linear(4, 3), rank=4)
    with pytest.raises(TypeError, match="base must be an nn.Linear"):
        lora.LoRALinear(torch.nn.Conv1d(3, 3, 1))


def test_bad_arguments_are_named_and_leave_the_model_as_it_was():
    model = _tiny()
    with pytest.raises(TypeError, match="targets must be a sequence of layer names"):
        lora.add_lora(model, "wq")  # a str would match by substring: "q" in "wq"
    with pytest.raises(ValueError, match="rank must be >= 1"):
        lora.add_lora(model, ("wq",), rank=0)
    assert all(p.requires_grad for p in model.parameters())
    layer = lora.LoRALinear(torch.nn.Linear(4, 3), rank=2)
    with pytest.raises(ValueError, match="x must have width 4"):
        layer(torch.ones(2, 5))
    with pytest.raises(TypeError, match="x must be a floating-point tensor"):
        lora.lora_linear(torch.ones(2, 4, dtype=torch.long), layer.base.weight, None, layer.A, layer.B, 1.0)
    with pytest.raises(ValueError, match=r"B must have shape \(3, 2\)"):
        lora.merged_weight(layer.base.weight, layer.A, layer.B.T, 1.0)
