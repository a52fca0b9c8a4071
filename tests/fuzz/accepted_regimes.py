"""Bad-looking values that are in fact fine for notebook 16's code (``llmlab.regimes``, ``llmlab.nn.lstm``), merged
into ``accepted.ACCEPTED``."""
from __future__ import annotations

_NAN = ("NaN in, NaN out: a check would read every value on each call of a computation that runs every step (a "
        "forward, a loss), and the NaN shows in its result")
_ZERO = "0 is a documented setting: {}"

ACCEPTED: dict[str, str] = {
    **{f"llmlab.nn.lstm.{fn}({arg}=<nan>)": _NAN
       for fn in ("lstm_cell", "lstm_forward", "lstm_forward_fused")
       for arg in ("x", "W_ih", "W_hh", "b_ih", "b_hh", *(("h", "c") if fn == "lstm_cell" else ("h0", "c0")))},
    "llmlab.regimes.multitask.multitask_loss(logits_a=<nan>)": _NAN,
    "llmlab.regimes.multitask.multitask_loss(logits_b=<nan>)": _NAN,
    "llmlab.regimes.multitask.multitask_loss(weight=<zero>)": _ZERO.format("the main task alone"),
    "llmlab.regimes.augmentation.token_dropout(p=<zero>)": _ZERO.format("no token is dropped"),
    "llmlab.regimes.augmentation.token_dropout(protected=<empty>)": "no protected ids: only padding is always kept",
    "llmlab.regimes.continual.replay_batch(ratio=<zero>)": _ZERO.format("no replay, the new data alone"),
    "llmlab.regimes.continual.replay_batch(new=<negative>)": "rows are copied as they are, whatever their values",
    "llmlab.regimes.continual.replay_batch(old=<negative>)": "rows are copied as they are, whatever their values",
    "llmlab.regimes.noisy_labels.flip_labels(fraction=<zero>)": _ZERO.format("no label is flipped"),
    "llmlab.regimes.scaling.power_law(c=<zero>)": _ZERO.format("a law without a floor"),
}
