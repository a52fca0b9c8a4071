"""Valid calls: robustness, interpretability, bias and energy (``llmlab.trust``, notebook 15b) and their diagrams."""
from __future__ import annotations

import torch

from tests.fuzz import fixtures as F


def _sum_of_squares(z: torch.Tensor) -> torch.Tensor:
    """A batch (N, ...) -> (N,): the score every attribution call explains."""
    return z.pow(2).flatten(1).sum(-1)


def _double(x: torch.Tensor) -> torch.Tensor:
    return 2 * x


def _noop() -> None:
    return None


def _agg():
    import matplotlib

    matplotlib.use("Agg")


def _strip():
    _agg()
    return dict(tokens=["[CLS]", "did", "you", "see"], rows={"IG": [0.1, -0.2, 0.3, 0.0], "rollout": [0.5, 0.1, 0.2, 0.2]},
                title="t")


def _box():
    _agg()
    return dict(x0=[0.1, 0.2], eps=0.02, fgsm_point=[0.12, 0.18], pgd_path=[[0.11, 0.19], [0.12, 0.18]],
                names=("i", "j"), title="t")


def _probe(n: int = 6, d: int = 4, k: int = 3) -> dict:
    return dict(X=F.randn(n, d), y=torch.arange(n) % k, W=F.randn(d, k, seed=1), b=F.randn(k, seed=2))


VALID = {
    "llmlab.trust.adversarial.fgsm": lambda: dict(x=F.randn(3, 4), grad=F.randn(3, 4, seed=1), eps=0.1),
    "llmlab.trust.adversarial.pgd_step": lambda: dict(x=F.randn(3, 4), x0=F.randn(3, 4, seed=1),
                                                      grad=F.randn(3, 4, seed=2), eps=0.1, alpha=0.05),
    "llmlab.trust.adversarial.pgd_attack": lambda: dict(loss_grad=_double, x0=F.randn(3, 4), eps=0.1, alpha=0.05,
                                                        steps=3),
    "llmlab.trust.adversarial.probe_input_grad": lambda: _probe(),
    "llmlab.trust.adversarial.accuracy_under_attack": lambda: dict(**_probe(), eps=0.1, attack="pgd", steps=3),
    "llmlab.trust.adversarial.adversarial_training": lambda: dict(X=F.randn(12, 4), y=torch.arange(12) % 3,
                                                                  n_classes=3, eps=0.05, l2=0.01, rounds=1, steps=5),
    "llmlab.trust.attribution.gauss_legendre": lambda: dict(steps=8),
    "llmlab.trust.attribution.integrated_gradients": lambda: dict(f=_sum_of_squares, x=F.randn(3, 4),
                                                                  baseline=F.randn(3, 4, seed=1), steps=4),
    "llmlab.trust.attribution.occlusion": lambda: dict(f=_sum_of_squares, x=F.randn(3, 4), baseline=torch.zeros(3, 4)),
    "llmlab.trust.attribution.attention_rollout": lambda: dict(attn=F.probs(2, 2, 4, 4)),
    "llmlab.trust.attribution.encoder_forward": lambda: dict(encoder=F.encoder(), word_embeddings=F.randn(1, 5, 16),
                                                             attention_mask=torch.ones(1, 5, dtype=torch.long),
                                                             need_weights=True),
    "llmlab.trust.attribution.ProbeScore": lambda: dict(encoder=F.encoder(), W=F.randn(16, 3), b=F.randn(3), target=1),
    "llmlab.trust.attribution.decoder_last_logits": lambda: dict(model=F.decoder(), x=F.randn(1, 5, 16),
                                                                 need_weights=True),
    "llmlab.trust.attribution.ZeroShotScore": lambda: dict(model=F.decoder(), prefix_ids=[1, 2], suffix_ids=[3],
                                                           label_id=4),
    "llmlab.trust.attribution.byte_groups": lambda: dict(pieces=[b" a", "中".encode()[:2], "中".encode()[2:]]),
    "llmlab.trust.bias.association": lambda: dict(W=F.randn(3, 5), A=F.randn(2, 5, seed=1), B=F.randn(2, 5, seed=2)),
    "llmlab.trust.bias.weat_effect_size": lambda: dict(X=F.randn(3, 5), Y=F.randn(4, 5, seed=1), A=F.randn(2, 5, seed=2),
                                                       B=F.randn(2, 5, seed=3)),
    "llmlab.trust.bias.bootstrap_ci": lambda: dict(values=F.randn(10, dtype=torch.float64), n=50, seed=0, level=0.9),
    "llmlab.trust.bias.direction": lambda: dict(male=F.randn(3, 5), female=F.randn(3, 5, seed=1)),
    "llmlab.trust.bias.project_out": lambda: dict(X=F.randn(3, 5), u=F.randn(5, seed=1)),
    "llmlab.trust.energy.energy_per_token": lambda: dict(seconds=2.0, tokens=16, watts=65.0),
    "llmlab.trust.energy.co2_per_token": lambda: dict(joules=3.0, grams_per_kwh=480.0),
    "llmlab.trust.energy.modelled_watts": lambda: dict(tdp_watts=65.0, cpu_seconds=1.5, wall_seconds=1.0, cores=2),
    "llmlab.trust.energy.rapl_zones": lambda: dict(root=F.folder()),
    "llmlab.trust.energy.rapl_joules": lambda: dict(before=100, after=50, max_range_uj=1000),
    "llmlab.trust.energy.measure": lambda: dict(fn=_noop, zones={}),
    "llmlab.trust.energy.logical_cores": lambda: dict(),
    "llmlab.diagrams.trust.attribution_strip": _strip,
    "llmlab.diagrams.trust.epsilon_box": _box,
}
SKIP: dict[str, str] = {}
