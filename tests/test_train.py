"""llmlab.train against torch's own optimiser, clipping and dropout, and the training loop end to end."""
import math

import pytest
import torch
import torch.nn.functional as F

from llmlab import train
from llmlab.nn.model import Decoder, DecoderConfig


def _tiny(dropout: float = 0.0, seed: int = 0) -> Decoder:
    torch.manual_seed(seed)
    return Decoder(DecoderConfig(vocab_size=64, dim=32, n_layers=2, n_heads=4, n_kv_heads=2, hidden_dim=64,
                                 max_seq_len=64, dropout=dropout))


def test_get_batch_windows_and_range():
    data = torch.arange(1000, 1030)
    g = torch.Generator().manual_seed(0)
    starts = []
    for _ in range(50):
        x, y = train.get_batch(data, 8, 6, g)
        assert x.shape == y.shape == (8, 6) and x.dtype == torch.long
        assert torch.equal(y, x + 1) and torch.equal(x[:, 1:], x[:, :-1] + 1)
        starts += (x[:, 0] - 1000).tolist()
    assert min(starts) == 0 and max(starts) == 30 - 6 - 1
    a = train.get_batch(data, 8, 6, torch.Generator().manual_seed(3))
    b = train.get_batch(data, 8, 6, torch.Generator().manual_seed(3))
    assert torch.equal(a[0], b[0])


@pytest.mark.parametrize("bad", [dict(data=torch.arange(5), block_size=5), dict(data=torch.rand(50)),
                                 dict(data=torch.arange(50), batch_size=0), dict(data=torch.arange(50).reshape(5, 10))])
def test_get_batch_rejects_bad_input(bad):
    kw = dict(data=torch.arange(50), batch_size=2, block_size=4) | bad
    with pytest.raises((ValueError, TypeError)):
        train.get_batch(kw["data"], kw["batch_size"], kw["block_size"])


def test_adamw_step_equals_torch_adamw():
    g = torch.Generator().manual_seed(0)
    p0 = torch.randn(5, 7, generator=g, dtype=torch.float64)
    kw = dict(lr=0.03, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
    p = torch.nn.Parameter(p0.clone())
    opt = torch.optim.AdamW([p], **kw)
    mine = (p0.clone(), torch.zeros_like(p0), torch.zeros_like(p0))
    for step in range(1, 11):
        grad = torch.randn(5, 7, generator=g, dtype=torch.float64)
        p.grad = grad.clone()
        opt.step()
        mine = train.adamw_step(mine[0], grad, mine[1], mine[2], step, **kw)
        torch.testing.assert_close(mine[0], p.detach(), rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(mine[1], opt.state[p]["exp_avg"])
        torch.testing.assert_close(mine[2], opt.state[p]["exp_avg_sq"])


def test_lr_schedule_shape():
    lrs = [train.lr_at(s, 1.0, 10, 100, 0.1) for s in range(120)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0) and lrs[10] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))  # non-increasing after warm-up
    assert lrs[55] == pytest.approx(0.1 + 0.45)  # half-way down the cosine
    assert lrs[100:] == [0.1] * 20
    assert train.lr_at(0, 1.0, 0, 10) == 1.0
    with pytest.raises(ValueError):
        train.lr_at(0, 1.0, 20, 10)
    with pytest.raises(ValueError):
        train.lr_at(-1, 1.0, 2, 10)


@pytest.mark.parametrize("scale", [0.01, 10.0])
def test_clip_grad_norm_equals_torch(scale):
    model_a, model_b = _tiny(), _tiny()
    x = torch.randint(64, (2, 8))
    for m in (model_a, model_b):
        (m(x).sum() * scale).backward()
    norm_a = train.clip_grad_norm(model_a.parameters(), 1.0)  # a generator, walked once
    norm_b = torch.nn.utils.clip_grad_norm_(model_b.parameters(), 1.0)
    torch.testing.assert_close(norm_a, norm_b)
    for pa, pb in zip(model_a.parameters(), model_b.parameters()):
        torch.testing.assert_close(pa.grad, pb.grad)


def test_dropout_statistics_and_identity_in_eval():
    x = torch.ones(200_000)
    out = train.dropout(x, 0.3, True, torch.Generator().manual_seed(0))
    assert abs((out == 0).float().mean().item() - 0.3) < 0.01
    assert torch.allclose(out[out != 0], torch.tensor(1 / 0.7))
    assert train.dropout(x, 0.3, training=False) is x
    with pytest.raises(ValueError):
        train.dropout(x, 1.0)


@pytest.mark.parametrize("losses,patience,delta,stop", [
    ([], 1, 0.0, False), ([3.0, 2.0, 2.5, 2.6], 2, 0.0, True), ([3.0, 2.0, 2.5, 1.9], 2, 0.0, False),
    ([3.0, 2.0, 1.95], 1, 0.1, True), ([3.0, 2.0, 1.85], 1, 0.1, False),
    ([3.0, 2.0, 2.0, 2.0], 2, 0.0, True), ([3.0, 2.0, 1.75], 1, 0.25, True)])  # equal, or better by exactly min_delta
def test_should_stop(losses, patience, delta, stop):
    assert train.should_stop(losses, patience, delta) is stop


def test_initial_loss_is_about_log_vocab():
    model = _tiny()
    x, y = train.get_batch(torch.randint(64, (500,)), 8, 16, torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert abs(train.lm_loss(model, x, y).item() - math.log(64)) < 0.1


def test_dropout_config_is_validated_and_only_active_in_training():
    with pytest.raises(ValueError, match="dropout"):
        DecoderConfig(dropout=1.0)
    model = _tiny(dropout=0.5)
    x = torch.randint(64, (1, 8))
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))
        model.train()
        assert not torch.equal(model(x), model(x))


def test_train_learns_stops_early_and_restores_the_best_weights():
    torch.manual_seed(0)
    data = torch.arange(400) % 16  # a periodic stream: easy to learn
    model = _tiny()
    hist = train.train(model, data, data, train.TrainConfig(steps=40, batch_size=8, block_size=16, max_lr=1e-2,
                                                            warmup_steps=5, eval_every=10, eval_batches=2),
                       progress=False)
    assert hist.val_loss[-1] < 0.5 * hist.val_loss[0]
    assert len(hist.train_loss) == 40 and len(hist.lr) == 40 and hist.val_steps[-1] == 40
    # over-fit a handful of tokens, validate on others: early stopping ends the run and rolls back
    noisy = torch.randint(64, (300,), generator=torch.Generator().manual_seed(1))
    model = _tiny()
    cfg = train.TrainConfig(steps=300, batch_size=8, block_size=16, max_lr=1e-2, eval_every=5, eval_batches=2,
                            patience=2, weight_decay=0.0)
    hist = train.train(model, noisy[:40], noisy[40:], cfg, progress=False)
    assert hist.stopped_early and len(hist.train_loss) < 300
    restored = train.estimate_loss(model, noisy[40:], 8, 16, 2)
    assert restored == pytest.approx(hist.best_val_loss, rel=1e-5)


def test_train_takes_a_loss_and_a_batch_sampler():
    data = torch.randint(64, (400,), generator=torch.Generator().manual_seed(2))
    cfg = train.TrainConfig(steps=6, batch_size=4, block_size=16, warmup_steps=2, eval_every=3, eval_batches=2)
    plain = train.train(_tiny(), data, data, cfg, progress=False)
    # the defaults, spelled out, are the same run
    same = train.train(_tiny(), data, data, cfg, progress=False, loss_fn=train.lm_loss,
                       sample=lambda g: train.get_batch(data, cfg.batch_size, cfg.block_size, g))
    assert same.train_loss == plain.train_loss and same.val_loss == plain.val_loss
    # a loss whose targets carry more than the next tokens (a tuple, moved to the model's device with x)
    windows = data[:391].reshape(-1, 17)
    seen = []

    def weighted(model, x, y):
        targets, weight = y
        seen.append((x.shape, targets.shape, weight.shape))
        per_token = F.cross_entropy(model(x).flatten(0, 1), targets.flatten(), reduction="none")
        return (per_token * weight.flatten()).mean()

    def sample(g):
        rows = windows[torch.randint(len(windows), (3,), generator=g)]
        return rows[:, :-1], (rows[:, 1:], torch.ones(3, 16))

    hist = train.train(_tiny(), data, data, cfg, progress=False, loss_fn=weighted, sample=sample)
    assert len(hist.train_loss) == 6 and seen[0] == ((3, 16), (3, 16), (3, 16))
    assert hist.val_loss[0] == pytest.approx(plain.val_loss[0], rel=0.2)  # validation stays the plain loss
    with pytest.raises(TypeError, match="loss_fn"):
        train.train(_tiny(), data, data, cfg, progress=False, loss_fn="cross_entropy")
    with pytest.raises(TypeError, match="sample"):
        train.train(_tiny(), data, data, cfg, progress=False, sample=windows)


def test_bf16_autocast_step_tracks_fp32():
    data = torch.randint(64, (500,), generator=torch.Generator().manual_seed(0))
    losses = {}
    for dtype in (None, torch.bfloat16):
        model = _tiny()
        opt = torch.optim.AdamW(model.parameters(), 1e-3)
        g = torch.Generator().manual_seed(0)
        losses[dtype] = [train.train_step(model, opt, *train.get_batch(data, 4, 16, g), 1.0, dtype) for _ in range(5)]
    assert max(abs(a - b) for a, b in zip(losses[None], losses[torch.bfloat16])) < 0.05
