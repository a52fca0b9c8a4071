"""llmlab.tokenization.crf against pytorch-crf (torchcrf.CRF, batch_first=True) on random weights: log Z, the
negative log-likelihood with its gradients, and the Viterbi path agree; the demo's training lowers the NLL."""
import pytest
import torch

from llmlab.data import chinese_gold
from llmlab.tokenization import crf

torchcrf = pytest.importorskip("torchcrf")

SHAPES = [(1, 1, 4), (3, 1, 4), (2, 7, 4), (4, 12, 5), (1, 30, 2), (5, 9, 7)]


def _oracle(K: int, seed: int, scale: float = 1.0) -> "torchcrf.CRF":
    """A torchcrf.CRF with random scores (larger than its own initialisation, so that they matter)."""
    g = torch.Generator().manual_seed(seed)
    oracle = torchcrf.CRF(K, batch_first=True)
    with torch.no_grad():
        for p in (oracle.transitions, oracle.start_transitions, oracle.end_transitions):
            p.copy_(torch.randn(p.shape, generator=g) * scale)
    return oracle


def _weights(oracle) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return oracle.transitions, oracle.start_transitions, oracle.end_transitions


def _mask(tags: torch.Tensor) -> torch.Tensor:
    """No padding: every position counts (a bool mask; torchcrf's default is a deprecated uint8 one)."""
    return torch.ones(tags.shape, dtype=torch.bool)


@pytest.mark.parametrize("B,T,K", SHAPES)
def test_log_partition_and_nll_match_torchcrf(B, T, K):
    oracle = _oracle(K, seed=B * 100 + T * 10 + K)
    g = torch.Generator().manual_seed(T)
    emissions = torch.randn(B, T, K, generator=g) * 2
    tags = torch.randint(0, K, (B, T), generator=g)
    # torchcrf's forward is the log-likelihood log p(tags | emissions) = score(tags) - log Z
    llh = oracle(emissions, tags, _mask(tags), reduction="none")  # (B,)
    score = crf.crf_score(emissions, tags, *_weights(oracle))
    log_z = crf.crf_log_partition(emissions, *_weights(oracle))
    assert log_z.shape == (B,) and score.shape == (B,)
    torch.testing.assert_close(score - log_z, llh, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(log_z, oracle._compute_normalizer(emissions.transpose(0, 1),
                                                                 torch.ones(T, B, dtype=torch.bool)),
                               rtol=1e-5, atol=1e-5)
    nll = crf.crf_nll(emissions, tags, *_weights(oracle))
    torch.testing.assert_close(nll, -oracle(emissions, tags, _mask(tags), reduction="mean"), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("B,T,K", SHAPES)
def test_nll_gradients_match_torchcrf(B, T, K):
    oracle = _oracle(K, seed=K + T)
    g = torch.Generator().manual_seed(B + 1)
    emissions = (torch.randn(B, T, K, generator=g) * 2).requires_grad_(True)
    tags = torch.randint(0, K, (B, T), generator=g)
    (-oracle(emissions, tags, _mask(tags), reduction="mean")).backward()
    # with T = 1 no transition is used: torchcrf leaves its gradient None, ours is 0
    want = [emissions.grad.clone(), *(torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in _weights(oracle))]
    emissions.grad = None
    mine = [p.detach().clone().requires_grad_(True) for p in _weights(oracle)]
    crf.crf_nll(emissions, tags, *mine).backward()
    for got, expected in zip([emissions.grad, *(torch.zeros_like(p) if p.grad is None else p.grad for p in mine)], want):
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("B,T,K", SHAPES)
def test_viterbi_matches_torchcrf_decode(B, T, K):
    oracle = _oracle(K, seed=7 * T + K, scale=2.0)
    emissions = torch.randn(B, T, K, generator=torch.Generator().manual_seed(K)) * 3
    path = crf.crf_viterbi(emissions, *_weights(oracle))
    assert path.dtype == torch.int64 and path.shape == (B, T)
    assert path.tolist() == oracle.decode(emissions, _mask(emissions[..., 0]))


def test_viterbi_breaks_ties_like_torchcrf():
    """Integer scores tie everywhere: both keep the lowest tag index (torch.max's first maximum)."""
    oracle = torchcrf.CRF(4, batch_first=True)
    with torch.no_grad():
        for p in _weights(oracle):
            p.zero_()
    emissions = torch.tensor([[[1.0, 1.0, 0.0, 1.0], [0.0, 2.0, 2.0, 0.0], [3.0, 3.0, 3.0, 3.0]]])
    assert crf.crf_viterbi(emissions, *_weights(oracle)).tolist() == oracle.decode(emissions, _mask(emissions[..., 0])) == [[0, 1, 0]]


def test_large_scores_do_not_overflow():
    oracle = _oracle(4, seed=1)
    emissions = torch.randn(2, 6, 4, generator=torch.Generator().manual_seed(0)) * 500 + 2000
    log_z = crf.crf_log_partition(emissions, *_weights(oracle))
    assert torch.isfinite(log_z).all()
    tags = torch.zeros(2, 6, dtype=torch.long)
    torch.testing.assert_close(crf.crf_score(emissions, tags, *_weights(oracle)) - log_z,
                               oracle(emissions, tags, _mask(tags), reduction="none"), rtol=1e-5, atol=1e-3)


def test_float64_stays_float64():
    oracle = _oracle(3, seed=2).double()
    emissions = torch.randn(2, 5, 3, dtype=torch.float64)
    assert crf.crf_log_partition(emissions, *_weights(oracle)).dtype == torch.float64
    assert crf.crf_nll(emissions, torch.zeros(2, 5, dtype=torch.long), *_weights(oracle)).dtype == torch.float64


def test_char_windows():
    ids = torch.tensor([5, 6, 7])
    assert crf.char_windows(ids, 1, 0).tolist() == [[0, 5, 6], [5, 6, 7], [6, 7, 0]]
    assert crf.char_windows(ids, 0, 9).tolist() == [[5], [6], [7]]
    assert crf.char_windows(ids[None].repeat(2, 1), 2, 1).shape == (2, 3, 5)


def test_training_lowers_the_nll_and_segments_the_held_out_third():
    gold = chinese_gold()
    cut = len(gold) * 2 // 3
    model, losses = crf.train_crf(gold[:cut])  # the notebook's settings
    assert len(losses) == crf.CRFConfig().epochs and losses[-1] < 0.1 * losses[0]
    again, losses2 = crf.train_crf(gold[:cut])
    assert losses2 == losses  # the seed fixes the run
    words = crf.crf_segment("".join(gold[cut]), model)
    assert "".join(words) == "".join(gold[cut])
    with pytest.raises(TypeError, match="model"):
        crf.crf_segment("你好", "not a model")


def test_a_catalogued_mistake_changes_what_the_demo_shows():
    """The notebook trains with the learner's crf_nll: one with the sign flipped (the log-likelihood) trains the
    model away from the gold tags, and it segments the held-out third much worse."""
    from llmlab.tokenization import chinese as zh
    from tests.mutants.chinese_segmentation import nll_sign

    gold = chinese_gold()
    cut = len(gold) * 2 // 3
    f1 = {}
    for name, nll in [("right", crf.crf_nll), ("wrong", nll_sign)]:
        model, _ = crf.train_crf(gold[:cut], nll=nll)
        f1[name] = zh.evaluate(gold[cut:], [crf.crf_segment("".join(g), model) for g in gold[cut:]]).f1
    assert f1["right"] > 0.7 and f1["wrong"] < f1["right"] - 0.1, f1
