"""Valid calls: the linear-chain CRF of notebook 02 (``llmlab.tokenization.crf``) and its lattice diagram."""
from __future__ import annotations

from tests.fuzz.call import method

GOLD = [["我们", "喜欢", "吃", "火锅"], ["我", "爱", "北京天安门"], ["他", "来到", "了", "网易", "杭研", "大厦"]]


def _scores(B: int = 2, T: int = 3, K: int = 4):
    import torch

    g = torch.Generator().manual_seed(0)
    return dict(emissions=torch.randn(B, T, K, generator=g), transitions=torch.randn(K, K, generator=g),
                start=torch.randn(K, generator=g), end=torch.randn(K, generator=g))


def _with_tags():
    import torch

    return _scores() | dict(tags=torch.tensor([[0, 2, 3], [3, 0, 2]]))


def _model():
    from llmlab.tokenization import crf

    return crf.CharCRF(crf.build_vocab(["我们喜欢吃火锅"]), width=1, dim=4)


def _trained():
    from llmlab.tokenization import crf

    return crf.train_crf(GOLD, crf.CRFConfig(epochs=1, dim=4))[0]


def _lattice():
    import matplotlib
    import torch

    matplotlib.use("Agg")
    return dict(sentence="我爱你", emissions=torch.randn(3, 4, generator=torch.Generator().manual_seed(1)),
                transitions=torch.zeros(4, 4), path=[3, 3, 3], tags="BMES", title="t")


VALID = {
    "llmlab.tokenization.crf.crf_log_partition": _scores,
    "llmlab.tokenization.crf.crf_viterbi": _scores,
    "llmlab.tokenization.crf.crf_score": _with_tags,
    "llmlab.tokenization.crf.crf_nll": _with_tags,
    "llmlab.tokenization.crf.char_windows": lambda: dict(ids=__import__("torch").tensor([5, 6, 7]), width=2, pad_id=0),
    "llmlab.tokenization.crf.build_vocab": lambda: dict(texts=["我们喜欢吃火锅", "我爱北京"]),
    "llmlab.tokenization.crf.encode": lambda: dict(text="我爱火锅", vocab={"我": 2, "爱": 3}),
    "llmlab.tokenization.crf.tag_ids": lambda: dict(words=["我们", "喜欢", "吃", "北京天安门"]),
    "llmlab.tokenization.crf.CharCRF": lambda: dict(vocab={"我": 2, "爱": 3}, width=1, dim=4, num_tags=4),
    "llmlab.tokenization.crf.CharCRF.forward": lambda: method(_model(), "forward",
                                                              ids=__import__("torch").tensor([[2, 3, 1]])),
    "llmlab.tokenization.crf.CRFConfig": lambda: dict(width=1, dim=4, epochs=1, lr=0.05, weight_decay=1e-3, seed=0),
    "llmlab.tokenization.crf.train_crf": lambda: dict(gold=GOLD, config=__import__("llmlab.tokenization.crf",
                                                                                  fromlist=["CRFConfig"]).CRFConfig(
        epochs=1, dim=4), nll=__import__("llmlab.tokenization.crf", fromlist=["crf_nll"]).crf_nll),
    "llmlab.tokenization.crf.crf_segment": lambda: dict(text="我爱北京", model=_trained()),
    "llmlab.diagrams.segmentation.crf_lattice": _lattice,
}
SKIP: dict[str, str] = {}
TIME_LIMITS = {"llmlab.diagrams.segmentation.crf_lattice": 8.0, "llmlab.tokenization.crf.crf_segment": 8.0,
               "llmlab.tokenization.crf.train_crf": 8.0}
