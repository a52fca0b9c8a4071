"""Evaluation beyond single metrics: sliding-window perplexity (against a per-token brute force and
transformers' documented loop), zero-shot label scoring, and the logistic-regression probe
(against scikit-learn)."""
import math

import numpy as np
import pytest
import torch

from llmlab.evaluation import probe, zero_shot
from llmlab.metrics import lm
from llmlab.nn.model import Decoder, DecoderConfig

TINY = DecoderConfig(vocab_size=60, dim=32, n_layers=2, n_heads=4, n_kv_heads=2, hidden_dim=48, rope_theta=1e4,
                     max_seq_len=64)


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    model = Decoder(TINY).eval()
    with torch.no_grad():
        model.tok_embeddings.weight.mul_(3)  # sharper predictions, so context visibly matters
    return model


def _nan_model(idx, attention_mask=None):
    """A broken model: NaN logits (B, T, 5)."""
    return torch.full((*idx.shape, 5), float("nan"))


def _ids(n, vocab=60, seed=0):
    return torch.randint(vocab, (n,), generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------------- strided perplexity


def test_strided_windows_cover_every_token_once():
    assert lm.strided_windows(10, 4, 2) == [(0, 4, 4), (2, 6, 2), (4, 8, 2), (6, 10, 2)]
    assert lm.strided_windows(11, 4, 2)[-1] == (8, 11, 1)  # the last window scores only what is new
    assert lm.strided_windows(3, 8, 2) == [(0, 3, 3)]
    for n, window, stride in [(50, 16, 4), (37, 8, 3), (9, 9, 9), (20, 5, 1)]:
        windows = lm.strided_windows(n, window, stride)
        assert sum(t for _, _, t in windows) == n
        assert windows[-1][1] == n and all(e - b <= window and t <= e - b for b, e, t in windows)


def _brute_force_nll(model, ids, window, stride):
    """-log p(x_t | the context its window gives it), one forward pass per token."""
    total = 0.0
    with torch.no_grad():
        for begin, end, trg_len in lm.strided_windows(len(ids), window, stride):
            for t in range(max(end - trg_len, begin + 1), end):
                logits = model(ids[begin:t][None])[0, -1]  # predicts token t
                total -= logits.double().log_softmax(-1)[ids[t]].item()
    return total


# (11, 11) and (4, 4): 45 tokens leave a last chunk of one token, which has nothing to score
@pytest.mark.parametrize("window,stride", [(16, 4), (16, 16), (12, 5), (8, 1), (64, 3), (11, 11), (4, 4)])
def test_strided_nll_equals_per_token_brute_force(tiny, window, stride):
    ids = _ids(45)
    total, n = lm.strided_nll(tiny, ids, window, stride)
    windows = lm.strided_windows(len(ids), window, stride)
    # a window's first token has no prediction: only the text's first, unless the chunks are disjoint
    assert n == len(ids) - (len(windows) if stride == window else 1)
    assert total == pytest.approx(_brute_force_nll(tiny, ids, window, stride), rel=1e-6)
    assert lm.strided_perplexity(tiny, ids.tolist(), window, stride) == pytest.approx(math.exp(total / n), rel=1e-9)


def test_stride_one_gives_every_token_the_full_window(tiny):
    ids, window = _ids(30, seed=1), 8
    with torch.no_grad():
        want = -sum(tiny(ids[max(0, t - window + 1) : t][None])[0, -1].double().log_softmax(-1)[ids[t]].item()
                    for t in range(1, len(ids)))
    assert lm.strided_nll(tiny, ids, window, 1)[0] == pytest.approx(want, rel=1e-6)


def test_whole_text_in_one_window_is_plain_perplexity(tiny):
    ids = _ids(40, seed=2)
    with torch.no_grad():
        log_probs = tiny(ids[None])[0, :-1].double().log_softmax(-1)
    assert lm.strided_perplexity(tiny, ids, 64, 7) == pytest.approx(lm.perplexity(log_probs, ids[1:]).item(), rel=1e-6)


def test_strided_perplexity_matches_the_transformers_documentation_loop():
    """The loop of transformers' "Perplexity of fixed-length models" on a small random Llama: labels of
    the context set to -100, the model's own shifted cross-entropy. (The documentation weights each
    window's mean loss by its valid labels minus one; that is right for the first window only, whose
    first label has no prediction: later windows score all trg_len labels. We weight by the labels
    the loss actually used.)"""
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(vocab_size=60, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    model = transformers.LlamaForCausalLM(cfg).eval()
    encodings = _ids(70, seed=3)[None]
    max_length, stride = 24, 10
    seq_len = encodings.size(1)
    nll_sum, n_tokens, prev_end_loc = 0.0, 0, 0
    for begin_loc in range(0, seq_len, stride):
        end_loc = min(begin_loc + max_length, seq_len)
        trg_len = end_loc - prev_end_loc
        input_ids = encodings[:, begin_loc:end_loc]
        target_ids = input_ids.clone()
        target_ids[:, :-trg_len] = -100
        with torch.no_grad():
            loss = model(input_ids, labels=target_ids).loss
        num_loss_tokens = (target_ids[:, 1:] != -100).sum().item()
        nll_sum += loss.item() * num_loss_tokens
        n_tokens += num_loss_tokens
        prev_end_loc = end_loc
        if end_loc == seq_len:
            break
    ours_total, ours_n = lm.strided_nll(lambda idx: model(idx).logits, encodings[0], max_length, stride)
    assert ours_n == n_tokens == seq_len - 1
    assert ours_total == pytest.approx(nll_sum, rel=1e-5)


@pytest.mark.parametrize(
    "call,exc,match",
    [
        (lambda m: lm.strided_windows(10, 4, 5), ValueError, r"stride \(5\) > window \(4\)"),
        (lambda m: lm.strided_windows(10, 1, 1), ValueError, "window must be >= 2"),
        (lambda m: lm.strided_windows(0, 4, 2), ValueError, "n_tokens must be >= 1"),
        (lambda m: lm.strided_windows(10, 4.0, 2), TypeError, "window must be an int"),
        (lambda m: lm.strided_nll(m, torch.tensor([3]), 4, 2), ValueError, "at least 2 tokens"),
        (lambda m: lm.strided_nll(m, torch.zeros(2, 5, dtype=torch.long), 4, 2), ValueError, "1-D"),
        (lambda m: lm.strided_nll(m, torch.zeros(5), 4, 2), TypeError, "integer token ids"),
        (lambda m: lm.strided_nll(m, [1, -2, 3], 4, 2), ValueError, "outside"),
        (lambda m: lm.perplexity(torch.full((2, 3), float("nan")), torch.tensor([0, 1])), ValueError, "NaN"),
        (lambda m: lm.strided_nll(_nan_model, torch.tensor([1, 2, 3]), 4, 2), ValueError, "NaN or infinite"),
    ],
)
def test_strided_bad_input(tiny, call, exc, match):
    with pytest.raises(exc, match=match):
        call(tiny)


# ------------------------------------------------------------------------------------------ zero-shot


def test_continuation_log_prob_is_the_chain_rule(tiny):
    prompt, cont = [5, 9, 2, 7], [11, 4, 20]
    with torch.no_grad():
        want = sum(tiny(torch.tensor([prompt + cont[:j]]))[0, -1].double().log_softmax(-1)[cont[j]].item()
                   for j in range(len(cont)))
    assert zero_shot.continuation_log_prob(tiny, prompt, cont) == pytest.approx(want, rel=1e-6)


def test_label_log_probs_batched_equals_one_by_one(tiny):
    prompts = [[1, 2, 3], [4, 5, 6, 7, 8, 9], [10], [11, 12, 13, 14]]
    labels = [[20], [21, 22], [23, 24, 25], [26]]  # one-token labels share the bare prompt
    want = torch.tensor([[zero_shot.continuation_log_prob(tiny, p, c) for c in labels] for p in prompts],
                        dtype=torch.float64)
    for batch_size in (1, 3, 64):
        got = zero_shot.label_log_probs(tiny, prompts, labels, batch_size=batch_size, pad_id=0)
        assert got.shape == (4, 4) and got.dtype == torch.float64
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_calibration_subtracts_the_content_free_scores():
    scores = torch.tensor([[-1.0, -3.0], [-2.0, -2.5]])
    prior = torch.tensor([-0.5, -4.0])
    torch.testing.assert_close(zero_shot.calibrate(scores, prior), torch.tensor([[-0.5, 1.0], [-1.5, 1.5]]))
    assert zero_shot.calibrate(scores, prior).argmax(1).tolist() == [1, 1]  # the prior hid class 1


@pytest.mark.parametrize(
    "call,exc,match",
    [
        (lambda m: zero_shot.continuation_log_prob(m, [], [1]), ValueError, "prompt_ids is empty"),
        (lambda m: zero_shot.continuation_log_prob(m, [1], []), ValueError, "cont_ids is empty"),
        (lambda m: zero_shot.continuation_log_prob(m, "abc", [1]), TypeError, "got str"),
        (lambda m: zero_shot.label_log_probs(m, [], [[1]]), ValueError, "at least one prompt"),
        (lambda m: zero_shot.label_log_probs(m, [[1, 2]], [[3]], batch_size=0), ValueError, "batch_size"),
        (lambda m: zero_shot.label_log_probs(_nan_model, [[1, 2]], [[3]]), ValueError, "NaN or infinite"),
        (lambda m: zero_shot.calibrate(torch.zeros(2, 3), torch.zeros(2)), ValueError, r"\(N, K\)"),
        (lambda m: zero_shot.calibrate(torch.tensor([[0.0, float("nan")]]), torch.zeros(2)), ValueError, "NaN"),
    ],
)
def test_zero_shot_bad_input(tiny, call, exc, match):
    with pytest.raises(exc, match=match):
        call(tiny)


# ------------------------------------------------------------------------------------ linear probe


def _problem(n=150, d=6, k=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    W = torch.randn(d, k, generator=g, dtype=torch.float64) * 2
    y = (X @ W + torch.tensor([1.0, 0.0, -1.0][:k], dtype=torch.float64) + torch.randn(n, k, generator=g, dtype=torch.float64)).argmax(1)
    return X, y


@pytest.mark.parametrize("C", [0.05, 1.0, 20.0])
def test_logistic_regression_matches_sklearn(C):
    linear_model = pytest.importorskip("sklearn.linear_model")
    X, y = _problem()
    W, b = probe.fit_logistic_regression(X, y, 3, l2=1 / (C * len(X)), steps=300)
    sk = linear_model.LogisticRegression(C=C, tol=1e-12, max_iter=10_000).fit(X.numpy(), y.numpy())
    np.testing.assert_allclose(W.numpy(), sk.coef_.T, atol=1e-5)
    np.testing.assert_allclose(b.numpy(), sk.intercept_ - sk.intercept_.mean(), atol=1e-5)
    np.testing.assert_allclose(probe.predict_proba(X, W, b).numpy(), sk.predict_proba(X.numpy()), atol=1e-6)


def test_logistic_regression_reaches_the_optimum_and_keeps_dtype():
    X, y = _problem(seed=1)
    W, b = probe.fit_logistic_regression(X.float(), y, 3, l2=0.01)
    assert W.dtype == b.dtype == torch.float32 and W.shape == (6, 3) and b.shape == (3,)
    W64, b64 = probe.fit_logistic_regression(X, y, 3, l2=0.01, steps=300)
    W64.requires_grad_(True), b64.requires_grad_(True)
    probe.logistic_loss(X, y, W64, b64, 0.01).backward()
    assert W64.grad.abs().max() < 1e-6 and b64.grad.abs().max() < 1e-6  # a stationary point of a convex loss
    assert abs(b64.sum().item()) < 1e-9


@pytest.mark.parametrize(
    "call,exc,match",
    [
        (lambda X, y: probe.fit_logistic_regression(X.masked_fill(X > 2, float("nan")), y, 3), ValueError, "NaN"),
        (lambda X, y: probe.fit_logistic_regression(X, y + 1, 3), ValueError, r"y must lie in \[0, n_classes=3\)"),
        (lambda X, y: probe.fit_logistic_regression(X, y[:-1], 3), ValueError, "y must have shape"),
        (lambda X, y: probe.fit_logistic_regression(X[:0], y[:0], 3), ValueError, "empty"),
        (lambda X, y: probe.fit_logistic_regression(X[0], y, 3), ValueError, r"shape \(N, D\)"),
        (lambda X, y: probe.fit_logistic_regression(X, y.double(), 3), TypeError, "integer class ids"),
        (lambda X, y: probe.fit_logistic_regression(X, y, 3, l2=-1.0), ValueError, "l2 must be >= 0"),
        (lambda X, y: probe.fit_logistic_regression(X, y, 1), ValueError, "n_classes must be >= 2"),
        (lambda X, y: probe.fit_logistic_regression(X.numpy(), y, 3), TypeError, "X must be a torch.Tensor"),
    ],
)
def test_probe_bad_input(call, exc, match):
    X, y = _problem(n=20)
    with pytest.raises(exc, match=match):
        call(X, y)
