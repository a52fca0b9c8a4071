"""The demos of notebook 15b run the learner's functions: on the real MiniLM topic probe a catalogued FGSM mistake
(a descent step) gives another accuracy-under-attack curve than the reference, a rollout mistake another attribution
strip, a bootstrap mistake another interval; a stub hands over to the reference, and ``yours`` says which ran.
Also: integrated gradients equal Captum's on the real MiniLM."""
import pytest
import torch

from llmlab.grading.demo import yours
from llmlab.trust import adversarial, attribution, bias
from tests.demos import said, stub
from tests.mutants import trust as mutants


@pytest.fixture(scope="module")
def probe():
    """MiniLM, its tokenizer and the topic probe of 07b (train on 240 items, test on 80), as the notebook builds it."""
    from llmlab.data import TOPIC_LABELS, topic_set, train_test_split_items
    from llmlab.evaluation.probe import fit_logistic_regression
    from llmlab.models import load_minilm
    from llmlab.models.minilm import embed
    from llmlab.tokenization.wordpiece import load_minilm_tokenizer

    train, test = train_test_split_items(topic_set(), test_fraction=0.25, seed=0)
    encoder, wordpiece = load_minilm(device="cpu"), load_minilm_tokenizer()
    X_train, X_test = (embed(encoder, wordpiece, [it.text for it in part]) for part in (train, test))
    y_train, y_test = (torch.tensor([TOPIC_LABELS.index(it.label) for it in part]) for part in (train, test))
    W, b = fit_logistic_regression(X_train, y_train, len(TOPIC_LABELS), l2=0.01, steps=100)
    return encoder, wordpiece, X_test, y_test, W, b, [it.text for it in test]


def curve(X, y, W, b, fn):
    return [adversarial.accuracy_under_attack(X, y, W, b, eps, fgsm_fn=fn) for eps in (0.0, 0.005, 0.01, 0.02)]


def test_a_descent_step_in_fgsm_changes_the_attack_curve(probe, capsys):
    _, _, X, y, W, b, _ = probe
    want = curve(X, y, W, b, adversarial.fgsm)
    assert want[0] > want[-1] + 0.4  # the real attack: from 75% to under 10%
    mine = curve(X, y, W, b, yours(mutants.fgsm_descent, adversarial.fgsm, name="fgsm"))
    said(capsys, "fgsm", "yours")
    assert mine != want and mine[-1] >= mine[0]  # the "attack" helps the probe instead
    assert curve(X, y, W, b, yours(stub, adversarial.fgsm, name="fgsm")) == want
    said(capsys, "fgsm", "llmlab's reference")


def test_a_reversed_rollout_changes_the_attribution_strip(probe, capsys):
    encoder, wordpiece, *_ , texts = probe
    ids = wordpiece.encode(texts[0])
    E = encoder.word_embeddings.weight[torch.tensor(ids)]
    _, attn = attribution.encoder_forward(encoder, E[None], need_weights=True)
    want = attribution.attention_rollout(attn[:, 0]).mean(0)
    mine = yours(mutants.rollout_reversed, attribution.attention_rollout, name="attention_rollout")(attn[:, 0]).mean(0)
    said(capsys, "attention_rollout", "yours")
    assert (mine - want).abs().max() > 0.01


def test_a_normal_interval_differs_from_the_bootstrap_on_a_small_sample(capsys):
    gaps = torch.tensor([-0.69, 0.45, -0.38, -0.36, -0.02, -0.18, 0.26, 0.12], dtype=torch.float64)
    want = bias.bootstrap_ci(gaps, 2000, 0)
    mine = yours(mutants.boot_one_tail_each, bias.bootstrap_ci, name="bootstrap_ci")(gaps, 2000, 0)
    said(capsys, "bootstrap_ci", "yours")
    assert (mine[1] - mine[0]) < (want[1] - want[0])  # a 90% interval sold as a 95% one


def test_integrated_gradients_equal_captums_on_minilm(probe):
    captum = pytest.importorskip("captum.attr")
    encoder, wordpiece, X, y, W, b, texts = probe
    ids = wordpiece.encode(texts[1])
    E = encoder.word_embeddings.weight[torch.tensor(ids)].detach()
    base = E.clone()
    base[1:-1] = encoder.word_embeddings.weight[0]
    f = attribution.ProbeScore(encoder, W, b, int((X[1] @ W + b).argmax()))
    ours = attribution.integrated_gradients(f, E, base, 16)
    theirs = captum.IntegratedGradients(f).attribute(E[None], base[None], n_steps=16)[0]
    assert torch.allclose(ours, theirs, rtol=1e-5, atol=1e-5)
    assert abs(ours.sum().item() - (f(E[None]) - f(base[None])).item()) < 0.02  # completeness, 16 nodes
