"""Bad-looking values that are in fact fine for ``llmlab.trust``'s privacy code (merged into ``accepted.ACCEPTED``)."""

_NO_NOISE = "noise_multiplier = 0 is plain clipped SGD, no privacy (documented: the accounting gives ε = inf)"
_LR0 = "lr = 0 leaves the weights as they are: a valid (if useless) step"
_STEPS0 = "0 steps: nothing is released (ρ = 0), or the weights stay as they are"

ACCEPTED: dict[str, str] = {
    "llmlab.trust.accounting.gaussian_rdp(noise_multiplier=<zero>)": _NO_NOISE,
    "llmlab.trust.accounting.dp_epsilon(noise_multiplier=<zero>)": _NO_NOISE,
    "llmlab.trust.dp_sgd.dp_sgd_step(noise_multiplier=<zero>)": _NO_NOISE,
    "llmlab.trust.dp_sgd.train_dp_logistic(noise_multiplier=<zero>)": _NO_NOISE,
    "llmlab.trust.accounting.gaussian_rdp(q=<zero>)": "q = 0: no example is ever sampled, ρ = 0 (documented)",
    "llmlab.trust.accounting.dp_epsilon(q=<zero>)": "q = 0: no example is ever sampled, ρ = 0 (documented)",
    "llmlab.trust.accounting.gaussian_rdp(steps=<zero>)": _STEPS0,
    "llmlab.trust.accounting.dp_epsilon(steps=<zero>)": _STEPS0,
    "llmlab.trust.dp_sgd.train_dp_logistic(steps=<zero>)": _STEPS0,
    "llmlab.trust.federated.local_sgd(steps=<zero>)": _STEPS0,
    "llmlab.trust.dp_sgd.dp_sgd_step(lr=<zero>)": _LR0,
    "llmlab.trust.dp_sgd.train_dp_logistic(lr=<zero>)": _LR0,
    "llmlab.trust.federated.local_sgd(lr=<zero>)": _LR0,
    "llmlab.trust.federated.worker_fedavg(lr=<zero>)": _LR0,
    "llmlab.trust.membership.dp_advantage_bound(delta=<zero>)": "δ = 0 is pure ε-DP: the bound (e^ε - 1)/(e^ε + 1)",
    "llmlab.trust.membership.dp_advantage_bound(epsilon=<zero>)": "ε = 0 (with δ) is a valid guarantee: the bound 2δ / 2",
}
