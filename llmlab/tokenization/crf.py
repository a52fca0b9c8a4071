"""A linear-chain CRF for B/M/E/S tagging, in plain PyTorch, with pytorch-crf's conventions.

A tag path y_0 .. y_{T-1} (tags 0 .. K-1; for segmentation B, M, E, S = 0, 1, 2, 3) of a sentence scores

    score(y) = start[y_0] + sum_t emissions[t, y_t] + sum_{t >= 1} transitions[y_{t-1}, y_t] + end[y_{T-1}],

and the CRF gives it the probability p(y | x) = exp(score(y)) / Z, with Z the sum of exp(score) over all K^T
paths. The forward algorithm computes log Z, and the Viterbi algorithm the best path, in O(T K^2); training
minimises the negative log-likelihood log Z - score(gold).

Shapes, batch first as ``torchcrf.CRF(num_tags, batch_first=True)``: emissions (B, T, K) floating, tags (B, T)
int64, transitions (K, K) with ``transitions[i, j]`` the score of going from tag i to tag j, start (K,), end (K,),
all of the emissions' dtype. The sentences of a batch have the same length T >= 1 (there is no mask).

``CharCRF`` computes the emissions of a sentence from the characters around each position (offsets -width ..
+width, a linear layer over their embeddings), and ``train_crf`` fits it with Adam on a segmented corpus.
"""
from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from llmlab import validate

TAGS = "BMES"  # tag i of a segmentation CRF is TAGS[i]
PAD, UNK = 0, 1  # character ids: padding outside the sentence, a character the vocabulary lacks


# --------------------------------------------------------------------------- the CRF's four computations


def _check_crf(emissions, transitions, start, end) -> int:
    """K, after checking the shapes and dtypes of the module docstring."""
    validate.tensor("emissions", emissions, ndim=3, floating=True, finite=True)
    B, T, K = emissions.shape
    if B == 0 or T == 0 or K == 0:
        raise ValueError(f"emissions must be (B, T, K) with B, T, K >= 1, got shape {tuple(emissions.shape)}")
    for name, x, shape in (("transitions", transitions, (K, K)), ("start", start, (K,)), ("end", end, (K,))):
        validate.tensor(name, x, ndim=len(shape), floating=True, finite=True)
        if tuple(x.shape) != shape:
            raise ValueError(f"{name} must have shape {shape} for K = {K} tags, got {tuple(x.shape)}")
        if x.dtype != emissions.dtype:
            raise TypeError(f"{name} must have the emissions' dtype {emissions.dtype}, got {x.dtype}")
    return K


def _check_tags(tags, emissions: torch.Tensor, K: int) -> torch.Tensor:
    validate.tensor("tags", tags, ndim=2)
    if tags.dtype != torch.int64:
        raise TypeError(f"tags must be an int64 tensor of tag indices, got dtype {tags.dtype}")
    if tuple(tags.shape) != tuple(emissions.shape[:2]):
        raise ValueError(f"tags must have shape (B, T) = {tuple(emissions.shape[:2])}, got {tuple(tags.shape)}")
    if bool(((tags < 0) | (tags >= K)).any()):
        raise ValueError(f"tags must hold tag indices 0 .. {K - 1}")
    return tags


def crf_log_partition(emissions: torch.Tensor, transitions: torch.Tensor, start: torch.Tensor,
                      end: torch.Tensor) -> torch.Tensor:
    """log Z of each sentence, by the forward algorithm in log space: emissions (B, T, K) -> (B,).

    alpha_0 = start + emissions[:, 0]; alpha_t[j] = logsumexp_i(alpha_{t-1}[i] + transitions[i, j]) + emissions[:, t, j];
    log Z = logsumexp_j(alpha_{T-1}[j] + end[j]). logsumexp subtracts the maximum first, so large scores do not
    overflow exp."""
    _check_crf(emissions, transitions, start, end)
    alpha = start + emissions[:, 0]  # (B, K): log of the summed exp-scores of every path ending in each tag
    for t in range(1, emissions.shape[1]):
        alpha = torch.logsumexp(alpha[:, :, None] + transitions, dim=1) + emissions[:, t]
    return torch.logsumexp(alpha + end, dim=1)


def crf_score(emissions: torch.Tensor, tags: torch.Tensor, transitions: torch.Tensor, start: torch.Tensor,
              end: torch.Tensor) -> torch.Tensor:
    """The score of the tag path ``tags`` (B, T) of each sentence: emissions (B, T, K) -> (B,)."""
    K = _check_crf(emissions, transitions, start, end)
    _check_tags(tags, emissions, K)
    score = emissions.gather(2, tags[:, :, None]).squeeze(2).sum(1)  # (B,)
    score = score + transitions[tags[:, :-1], tags[:, 1:]].sum(1)
    return score + start[tags[:, 0]] + end[tags[:, -1]]


def crf_nll(emissions: torch.Tensor, tags: torch.Tensor, transitions: torch.Tensor, start: torch.Tensor,
            end: torch.Tensor) -> torch.Tensor:
    """The negative log-likelihood of the gold paths, log Z - score(tags), averaged over the batch: a 0-dim
    tensor that autograd differentiates (torchcrf's ``-crf(emissions, tags, reduction='mean')``)."""
    return (crf_log_partition(emissions, transitions, start, end)
            - crf_score(emissions, tags, transitions, start, end)).mean()


def crf_viterbi(emissions: torch.Tensor, transitions: torch.Tensor, start: torch.Tensor,
                end: torch.Tensor) -> torch.Tensor:
    """The best tag path of each sentence: emissions (B, T, K) -> tags (B, T) int64.

    delta_0 = start + emissions[:, 0]; delta_t[j] = max_i(delta_{t-1}[i] + transitions[i, j]) + emissions[:, t, j],
    remembering the best i; the last tag maximises delta_{T-1} + end, and the others are read back from the
    remembered i. On equal scores the lowest tag index wins, as torch.max(dim) and torch.argmax return it."""
    _check_crf(emissions, transitions, start, end)
    delta = start + emissions[:, 0]
    back = []  # back[t - 1][b, j]: the best tag before tag j at position t
    for t in range(1, emissions.shape[1]):
        delta, best = (delta[:, :, None] + transitions).max(dim=1)
        delta = delta + emissions[:, t]
        back.append(best)
    last = (delta + end).argmax(dim=1)  # (B,)
    path = [last]
    for best in reversed(back):
        last = best.gather(1, last[:, None]).squeeze(1)
        path.append(last)
    return torch.stack(path[::-1], dim=1)


# --------------------------------------------------------------------------- features: a window of characters


def char_windows(ids: torch.Tensor, width: int, pad_id: int = PAD) -> torch.Tensor:
    """The ids of the characters around each position: ids (..., T) -> (..., T, 2 width + 1) int64, where
    ``out[..., t, k] = ids[..., t + k - width]``, or ``pad_id`` where that position is outside the sentence."""
    validate.tensor("ids", ids, min_ndim=1)
    if ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
        raise TypeError(f"ids must be an integer tensor of character ids, got dtype {ids.dtype}")
    width = validate.integer("width", width, minimum=0, maximum=64)
    pad_id = validate.integer("pad_id", pad_id, minimum=0)
    T = ids.shape[-1]
    if T == 0:
        raise ValueError(f"ids must hold at least one position in its last dim, got shape {tuple(ids.shape)}")
    if bool((ids < 0).any()):
        raise ValueError("ids must be character ids >= 0")
    padded = torch.full((*ids.shape[:-1], T + 2 * width), pad_id, dtype=torch.int64)
    padded[..., width : width + T] = ids
    return padded.unfold(-1, 2 * width + 1, 1)  # (..., T, 2 width + 1): windows starting at t - width


def build_vocab(texts: Sequence[str]) -> dict[str, int]:
    """{character: id} over the characters of ``texts``, in sorted order from 2 (0 is PAD, 1 is UNK)."""
    texts = validate.strings("texts", texts, "texts (str)")
    if not "".join(texts):
        raise ValueError("texts must hold at least one character")
    return {ch: i + 2 for i, ch in enumerate(sorted(set("".join(texts))))}


def encode(text: str, vocab: dict[str, int]) -> torch.Tensor:
    """(T,) int64 ids of the characters of ``text``; UNK for a character the vocabulary lacks."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    if not isinstance(vocab, dict):
        raise TypeError(f"vocab must be a dict of character -> id (build_vocab), got {type(vocab).__name__}")
    return torch.tensor([vocab.get(ch, UNK) for ch in text], dtype=torch.int64)


def tag_ids(words: Sequence[str]) -> torch.Tensor:
    """(T,) int64 B/M/E/S tag indices of the characters of a segmented sentence (好 -> S, 火锅 -> B E)."""
    words = validate.strings("words", words, "words (str)")
    if any(not w for w in words):
        raise ValueError("words must not hold empty strings")
    tags = "".join("S" if len(w) == 1 else "B" + "M" * (len(w) - 2) + "E" for w in words)
    return torch.tensor([TAGS.index(y) for y in tags], dtype=torch.int64)


# --------------------------------------------------------------------------- the model and its training


class CharCRF(nn.Module):
    """Emissions from a window of characters, plus the CRF's transition, start and end scores.

    The emission of tag y at position t is a linear function of the embeddings of the characters at offsets
    -width .. +width (a separate weight per offset: the concatenated embeddings go through one Linear).
    ``vocab`` maps characters to ids (``build_vocab``); its size fixes the embedding table."""

    def __init__(self, vocab: dict[str, int], width: int = 2, dim: int = 32, num_tags: int = len(TAGS)):
        super().__init__()
        if not isinstance(vocab, dict) or not vocab:
            raise TypeError(f"vocab must be a non-empty dict of character -> id (build_vocab), got {vocab!r:.60}")
        self.vocab = vocab
        self.width = validate.integer("width", width, minimum=0, maximum=64)
        dim = validate.size("dim", dim)
        num_tags = validate.size("num_tags", num_tags)
        self.embed = nn.Embedding(max(vocab.values()) + 1, dim, padding_idx=PAD)
        self.proj = nn.Linear((2 * self.width + 1) * dim, num_tags)
        # like torchcrf: small random scores, so that no tag is preferred before training
        self.transitions = nn.Parameter(torch.empty(num_tags, num_tags).uniform_(-0.1, 0.1))
        self.start = nn.Parameter(torch.empty(num_tags).uniform_(-0.1, 0.1))
        self.end = nn.Parameter(torch.empty(num_tags).uniform_(-0.1, 0.1))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Emissions (B, T, K) of character ids (B, T) (or (T,), then B = 1)."""
        try:
            ids = ids if ids.ndim == 2 else ids[None]
            windows = char_windows(ids, self.width)  # (B, T, 2w + 1)
            return self.proj(self.embed(windows).flatten(2))
        except Exception as e:  # say what is wrong with ids, if ids is the cause
            validate.tensor("ids", ids)
            if ids.is_floating_point() or ids.dtype == torch.bool or not 1 <= ids.ndim <= 2:
                raise TypeError(f"ids must be a (B, T) or (T,) integer tensor, got {ids.dtype} "
                                f"of shape {tuple(ids.shape)}") from e
            if ids.numel() == 0:
                raise ValueError(f"ids must hold at least one character, got shape {tuple(ids.shape)}") from e
            if bool(((ids < 0) | (ids >= self.embed.num_embeddings)).any()):
                raise ValueError(f"ids must be in 0 .. {self.embed.num_embeddings - 1} (the vocabulary's ids)") from e
            raise

    def crf(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(transitions, start, end), in the order the crf_* functions take them after the emissions."""
        return self.transitions, self.start, self.end


@dataclass
class CRFConfig:
    """``train_crf``'s settings: the window and embedding sizes, epochs of Adam at ``lr`` with ``weight_decay``
    (an L2 penalty: 200 sentences are few, and without it the model learns them by heart), the seed."""

    width: int = 2
    dim: int = 16
    epochs: int = 12
    lr: float = 0.05
    weight_decay: float = 1e-3
    seed: int = 0

    def __post_init__(self):
        self.width = validate.integer("width", self.width, minimum=0, maximum=64)
        self.dim = validate.size("dim", self.dim)
        self.epochs = validate.size("epochs", self.epochs)
        self.lr = validate.positive_float("lr", self.lr)
        self.weight_decay = validate.positive_float("weight_decay", self.weight_decay, allow_zero=True)
        self.seed = validate.integer("seed", self.seed)


def train_crf(gold: Sequence[Sequence[str]], config: CRFConfig | None = None,
              nll: Callable[..., torch.Tensor] = crf_nll) -> tuple[CharCRF, list[float]]:
    """A ``CharCRF`` fitted to the segmented sentences ``gold`` by Adam on ``nll`` (``crf_nll``'s signature:
    emissions (B, T, K), tags (B, T), transitions, start, end -> the mean over the batch), and the mean NLL per
    sentence of each epoch. Sentences of the same length form a batch (the CRF has no mask); the batches' order
    is shuffled each epoch with ``config.seed``, which also seeds the initial weights, so a run is repeatable."""
    config = CRFConfig() if config is None else config
    if not isinstance(config, CRFConfig):
        raise TypeError(f"config must be a CRFConfig, got {type(config).__name__}")
    if isinstance(gold, (str, bytes)) or not isinstance(gold, Sequence) or not gold:
        raise TypeError(f"gold must be a non-empty list of segmented sentences (lists of words), got {gold!r:.60}")
    if not callable(nll):
        raise TypeError(f"nll must be a function like crf_nll, got {type(nll).__name__}")
    texts = ["".join(validate.strings("gold", list(words), "words (str)")) for words in gold]
    if any(not t for t in texts):
        raise ValueError("gold must not hold empty sentences")
    with torch.random.fork_rng(devices=[]):  # the initial weights from config.seed, the caller's RNG untouched
        torch.manual_seed(config.seed)
        model = CharCRF(build_vocab(texts), config.width, config.dim)
    by_length: dict[int, list[int]] = {}
    for i, t in enumerate(texts):
        by_length.setdefault(len(t), []).append(i)
    batches = [(torch.stack([encode(texts[i], model.vocab) for i in idx]),
                torch.stack([tag_ids(gold[i]) for i in idx])) for _, idx in sorted(by_length.items())]
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    order, losses = random.Random(config.seed), []
    for _ in range(config.epochs):
        order.shuffle(batches)
        total = 0.0
        for ids, tags in batches:
            loss = nll(model(ids), tags, *model.crf())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(ids)
        losses.append(total / len(texts))
    return model, losses


def crf_segment(text: str, model: CharCRF, viterbi: Callable[..., torch.Tensor] = crf_viterbi) -> list[str]:
    """The words of ``text`` by ``model``'s best tag path (``viterbi``: ``crf_viterbi``'s signature)."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    if not isinstance(model, CharCRF):
        raise TypeError(f"model must be a CharCRF (train_crf), got {type(model).__name__}")
    if not text:
        return []
    with torch.no_grad():
        tags = viterbi(model(encode(text, model.vocab)), *model.crf())[0]
    # a word starts at every B and S and after every E and S: also where the CRF, which forbids nothing,
    # puts B after B or M after S
    tags = [TAGS[y] for y in tags.tolist()]
    cuts = [0] + [i for i in range(1, len(text)) if tags[i] in "BS" or tags[i - 1] in "ES"] + [len(text)]
    return [text[a:b] for a, b in zip(cuts, cuts[1:])]
