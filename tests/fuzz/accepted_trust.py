"""Bad-looking values that are fine for ``llmlab.trust`` (notebook 15b): each such call must return normally."""

_ZERO_BUDGET = "0 is a valid budget: no attack (or no step), the input comes back unchanged (documented, >= 0)"
_ZERO_MEASURE = "0 is a measurement like any other (no time, no power, no energy): the result is 0 (documented, >= 0)"
_ANY_SHAPE = "x0 may have any shape, an empty one included (documented: the attack works elementwise)"
_NAN_FORWARD = "a model's forward pass: NaN in, NaN out, like every forward of llmlab (the NaN shows in its result)"
_COUNTER = "a RAPL counter reading: any non-negative integer the counter can hold (it wraps at max_range_uj)"
_COUNT = "a count that allocates nothing: any positive number is fine"
_ID0 = "0 is an index like any other (the first class, token id 0)"

ACCEPTED: dict[str, str] = {
    **{f"llmlab.trust.adversarial.{fn}({a}=<zero>)": _ZERO_BUDGET
       for fn, args in {"fgsm": ["eps"], "pgd_step": ["eps", "alpha"], "pgd_attack": ["eps", "alpha"],
                        "accuracy_under_attack": ["eps"], "adversarial_training": ["eps"]}.items() for a in args},
    "llmlab.trust.adversarial.adversarial_training(l2=<zero>)": "l2 = 0: no regularisation (as fit_logistic_regression)",
    **{f"llmlab.trust.adversarial.pgd_attack(x0=<{k}>)": _ANY_SHAPE for k in ("empty", "extra_dim", "missing_dim")},
    "llmlab.trust.attribution.ProbeScore(target=<zero>)": _ID0,
    "llmlab.trust.attribution.ZeroShotScore(label_id=<zero>)": _ID0,
    "llmlab.trust.attribution.byte_groups(pieces=<empty>)": "no tokens make no groups: []",
    "llmlab.trust.attribution.decoder_last_logits(x=<nan>)": _NAN_FORWARD,
    "llmlab.trust.attribution.encoder_forward(word_embeddings=<nan>)": _NAN_FORWARD,
    **{f"llmlab.trust.energy.{fn}({a}=<zero>)": _ZERO_MEASURE
       for fn, args in {"energy_per_token": ["seconds", "watts"], "co2_per_token": ["joules", "grams_per_kwh"],
                        "modelled_watts": ["cpu_seconds"]}.items() for a in args},
    "llmlab.trust.energy.energy_per_token(tokens=<huge>)": _COUNT,
    "llmlab.trust.energy.modelled_watts(cores=<huge>)": _COUNT,
    **{f"llmlab.trust.energy.rapl_joules({a}=<{k}>)": _COUNTER for a in ("before", "after") for k in ("zero", "huge")},
    "llmlab.trust.energy.rapl_joules(max_range_uj=<huge>)": _COUNTER,
    "llmlab.trust.energy.measure(zones=<empty>)": "{} means no readable meter: the time is measured, rapl_j is {}",
}
