"""The diagrams of notebooks 03 (BPE's merges on a word) and 04 (masks, grouped-query heads): each draws a
Figure from real inputs, shows what the run did, and refuses bad arguments with TypeError / ValueError."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from llmlab.diagrams import attention as attention_diagrams  # noqa: E402
from llmlab.diagrams import bpe as bpe_diagrams  # noqa: E402
from llmlab.nn import attention as A  # noqa: E402
from llmlab.tokenization import bpe  # noqa: E402


@pytest.fixture(scope="module")
def smollm2():
    from llmlab.tokenization.smollm2 import load_smollm2_tokenizer

    return load_smollm2_tokenizer()


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _texts(fig: Figure) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts]


# ------------------------------------------------------------------------------------------------- 03: BPE


def test_merge_steps_replay_smollm2_encoding(smollm2):
    ids = [smollm2.byte_ids[b] for b in " tokenization".encode()]
    rows = bpe_diagrams.merge_steps(ids, smollm2.ranks, smollm2.merged)
    assert rows[0] == (ids, None, None)
    assert rows[-1][0] == smollm2.encode(" tokenization") == bpe.apply_merges(ids, smollm2.ranks, smollm2.merged)
    assert [rank for _, _, rank in rows[1:]] == [0, 6, 9, 12, 33, 36, 57, 211, 985, 2769, 9372]  # SmolLM2's ranks
    assert all(len(b) < len(a) for (a, _, _), (b, _, _) in zip(rows, rows[1:]))  # each merge shortens the word


def test_merge_ladder_draws_the_real_merges(smollm2):
    fig = bpe_diagrams.merge_ladder(" tokenization", smollm2)
    assert isinstance(fig, Figure)
    texts = _texts(fig)
    assert "rank 0: ␣ + t" in texts and "rank 9,372: ␣to + ken" in texts
    assert "13 bytes → 2 tokens in 11 merges" in fig.axes[0].get_title()


def test_merge_ladder_shows_split_characters_in_hex(smollm2):
    fig = bpe_diagrams.merge_ladder(" 大语言模型", smollm2)
    assert any("e5" in t for t in _texts(fig)) and any("split across tokens" in t for t in _texts(fig))


def test_merge_ladder_with_a_trained_tokenizer():
    tok = bpe.ByteBPE.train("low lower lowest newer newest wider widest low low lower new new", 270)
    fig = bpe_diagrams.merge_ladder(" lowest", tok, title="ours")
    assert isinstance(fig, Figure) and fig.axes[0].get_title() == "ours"


@pytest.mark.parametrize("kwargs, error", [
    (dict(word=3), TypeError), (dict(word=""), ValueError), (dict(word=" two words"), ValueError),
    (dict(word=" " + "a" * 40), ValueError), (dict(tokenizer="smollm2"), TypeError), (dict(title=1), TypeError),
    (dict(title=""), ValueError),
])
def test_merge_ladder_refuses_bad_arguments(smollm2, kwargs, error):
    args = dict(word=" tokenization", tokenizer=smollm2) | kwargs
    with pytest.raises(error, match=next(iter(kwargs))):
        bpe_diagrams.merge_ladder(**args)


@pytest.mark.parametrize("kwargs, error", [
    (dict(ids="abc"), TypeError), (dict(ids=[]), ValueError), (dict(ranks=[]), TypeError), (dict(ranks={}), ValueError),
    (dict(merged={(1, 3): 9}), ValueError),
])
def test_merge_steps_refuses_bad_arguments(kwargs, error):
    args = dict(ids=[1, 2, 3], ranks={(1, 2): 0}, merged={(1, 2): 9}) | kwargs
    with pytest.raises(error, match="ids|ranks|merged"):
        bpe_diagrams.merge_steps(**args)


# --------------------------------------------------------------------------------------------- 04: attention


def _left_padded(tokenizer, sentences):
    batch = [tokenizer.encode(s) for s in sentences]
    S = max(map(len, batch))
    am = torch.tensor([[0] * (S - len(x)) + [1] * len(x) for x in batch])
    tokens = [["<pad>"] * (S - len(x)) + [tokenizer.decode([i]) for i in x] for x in batch]
    return am, tokens


def test_mask_grid_of_a_real_left_padded_batch(smollm2):
    am, tokens = _left_padded(smollm2, ["The cat sat on the mat.", "Dogs bark."])
    fig = attention_diagrams.mask_grid(am, tokens)
    texts = _texts(fig)
    assert isinstance(fig, Figure)
    n_pad = int((am == 0).sum())
    assert texts.count("◀ no key") == n_pad  # each left-padding query sees no key
    assert "sequence 1: 4 padding positions" in texts and "visible" in texts and "hidden: a padding key" in texts
    assert "visible, but it should be hidden" not in texts


def test_mask_grid_flags_a_wrong_mask(smollm2):
    am, tokens = _left_padded(smollm2, ["The cat sat on the mat.", "Dogs bark."])
    S = am.shape[1]
    upper = A.causal_mask(S).T & A.padding_mask(am)  # sees the future
    texts = _texts(attention_diagrams.mask_grid(am, tokens, mask=upper))
    assert "visible, but it should be hidden" in texts and "hidden, but it should be visible" in texts
    right = A.causal_mask(S) & A.padding_mask(am)
    assert "visible, but it should be hidden" not in _texts(attention_diagrams.mask_grid(am, mask=right))


@pytest.mark.parametrize("kwargs, error, name", [
    (dict(attention_mask=[[1, 1]]), TypeError, "attention_mask"),
    (dict(attention_mask=torch.ones(2, 3, 4, dtype=torch.long)), ValueError, "attention_mask"),
    (dict(attention_mask=torch.full((1, 4), 2)), ValueError, "attention_mask"),
    (dict(attention_mask=torch.ones(1, 40, dtype=torch.long)), ValueError, "attention_mask"),
    (dict(tokens=[["a", "b", "c", "d"]] * 3), ValueError, "tokens"),
    (dict(tokens=[["a", "b", "c"], ["a", "b", "c", "d"]]), ValueError, "tokens"),
    (dict(tokens="abcd"), TypeError, "tokens"),
    (dict(mask=torch.ones(4, 4)), TypeError, "mask"),
    (dict(mask=torch.ones(3, 3, dtype=torch.bool)), ValueError, "mask"),
    (dict(title=3), TypeError, "title"), (dict(title=""), ValueError, "title"),
    (dict(mask=torch.ones(2, 4, 4, dtype=torch.bool)), ValueError, "mask"),
])
def test_mask_grid_refuses_bad_arguments(kwargs, error, name):
    args = dict(attention_mask=torch.tensor([[1, 1, 1, 1], [0, 0, 1, 1]])) | kwargs
    with pytest.raises(error, match=name):
        attention_diagrams.mask_grid(**args)


def test_gqa_heads_from_repeat_kv():
    kv_of_head = A.repeat_kv(torch.arange(3.0).view(1, 3, 1, 1), 3).flatten().long().tolist()
    fig = attention_diagrams.gqa_heads(9, 3, kv_of_head=kv_of_head, head_dim=64)
    texts = _texts(fig)
    assert isinstance(fig, Figure) and "K/V head 2" in texts and "q8" in texts
    assert any("2 × 3 × 64 = 384" in t for t in texts) and not any("wrong" in t for t in texts)
    tiled = torch.arange(3.0).view(1, 3, 1, 1).repeat(1, 3, 1, 1).flatten().long().tolist()  # the classic mistake
    assert any("6 query heads read the wrong K/V head" in t for t in _texts(attention_diagrams.gqa_heads(9, 3, tiled)))
    assert "multi-query" in attention_diagrams.gqa_heads(4, 1).axes[0].get_title()


@pytest.mark.parametrize("kwargs, error, name", [
    (dict(n_heads="9"), TypeError, "n_heads"), (dict(n_heads=0), ValueError, "n_heads"),
    (dict(n_kv_heads=2), ValueError, "n_kv_heads"), (dict(kv_of_head=[0, 1]), ValueError, "kv_of_head"),
    (dict(kv_of_head=[0] * 8 + [3]), ValueError, "kv_of_head"), (dict(kv_of_head=[0.0] * 9), TypeError, "kv_of_head"),
    (dict(head_dim=0), ValueError, "head_dim"), (dict(title=1), TypeError, "title"),
    (dict(title=""), ValueError, "title"),
])
def test_gqa_heads_refuses_bad_arguments(kwargs, error, name):
    with pytest.raises(error, match=name):
        attention_diagrams.gqa_heads(**(dict(n_heads=9, n_kv_heads=3) | kwargs))
