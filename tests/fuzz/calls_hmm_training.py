"""Valid calls: HMM training by counting (``llmlab.tokenization.chinese.train_hmm``)."""
from __future__ import annotations

VALID = {
    "llmlab.tokenization.chinese.train_hmm": lambda: dict(gold=[["我们", "喜欢", "吃", "火锅"], ["我", "爱", "北京天安门"]],
                                                          alpha=0.5),
}
SKIP: dict[str, str] = {}
