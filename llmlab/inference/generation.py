"""Turning a model's next-token distribution into text: sampling, filters and the decoding loop.

Temperature rescales logits before the softmax, p_i = exp(z_i / T) / sum_j exp(z_j / T):
T < 1 sharpens (T -> 0 is greedy argmax), T > 1 flattens toward uniform. Sampling draws one token
by inverting the cumulative distribution: with u ~ U[0, 1), pick the first i whose CDF exceeds u.
Filters cut the unreliable tail first: top-k keeps the k likeliest tokens, top-p (nucleus) the
smallest set holding probability p; a repetition penalty makes tokens already used less likely.

The loop (``generate``, ``generate_batch``) prefills the prompt into a ``KVCache`` once, then feeds
one token per step; a batch of prompts is left-padded so every row's next token is at the end.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from llmlab import model_device, validate

PROB_SUM_TOL = 1e-4


def temperature_softmax(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """softmax(logits / T) over the last dim; T = 0 gives the one-hot argmax. logits: (..., V)."""
    if not isinstance(logits, torch.Tensor) or not logits.is_floating_point():
        raise TypeError("logits must be a float tensor")
    temperature = validate.positive_float("temperature", temperature, allow_zero=True)
    _check_no_nan(logits)
    if temperature == 0:
        return torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).to(logits.dtype)
    # subtracting the max changes nothing mathematically and keeps exp() from overflowing
    z = logits / temperature
    z = (z - z.amax(-1, keepdim=True)).exp()
    return z / z.sum(-1, keepdim=True)


def sample_from_probs(probs: torch.Tensor, u: float) -> int:
    """Inverse-CDF sampling: the first index i with cumsum(probs)[i] > u. probs: (V,), u in [0, 1)."""
    if not isinstance(probs, torch.Tensor) or probs.ndim != 1 or not probs.is_floating_point():
        raise TypeError("probs must be a 1-D float tensor of shape (V,)")
    if not validate.all_finite(probs):
        raise ValueError("probs hold NaN or inf values")
    if (probs < 0).any() or abs(probs.sum().item() - 1) > PROB_SUM_TOL:
        raise ValueError(f"probs must be non-negative and sum to 1, got sum {probs.sum().item():.6f}")
    u = validate.real("u", u)
    if not 0 <= u < 1:
        raise ValueError(f"u must lie in [0, 1), got {u}")
    cdf = probs.double().cumsum(0)
    i = int(torch.searchsorted(cdf, torch.tensor([u], dtype=torch.float64), right=True))
    # rounding can leave cdf[-1] a hair below u: fall back to the last token that has mass
    return min(i, int(probs.nonzero().max()))


def sample(probs: torch.Tensor, generator: torch.Generator | None = None) -> int:
    """One token drawn from ``probs`` (V,), reproducibly when a seeded ``generator`` is given."""
    u = torch.rand((), generator=generator, dtype=torch.float64).item()
    return sample_from_probs(probs, u)


# ------------------------------------------------------------------------------------------ filters
# Each filter maps logits (..., V) to logits with the excluded tokens set to -inf, so filters compose
# and the softmax afterwards renormalises over what is left.


def _check_logits(logits) -> None:
    if not isinstance(logits, torch.Tensor) or not logits.is_floating_point() or logits.ndim < 1:
        raise TypeError("logits must be a float tensor of shape (..., V)")
    _check_no_nan(logits)


def _check_no_nan(logits: torch.Tensor) -> None:
    # -inf is a filtered-out token; NaN is a bug upstream, and softmax would spread it over every token
    if bool(torch.isnan(logits).any()):
        raise ValueError("logits hold NaN values")


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the k largest logits of each row (and any tied with the k-th), -inf elsewhere. (..., V)."""
    _check_logits(logits)
    return _top_k(logits, validate.size("k", k))


def _top_k(logits: torch.Tensor, k: int) -> torch.Tensor:
    if k >= logits.shape[-1]:
        return logits
    kth = logits.topk(k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Nucleus filter (Holtzman et al., 2020): keep the smallest set of most probable tokens whose
    probabilities sum to at least p, i.e. a token is kept when the mass of the tokens *before* it
    (in decreasing order of probability) is still below p. The top token is always kept. (..., V)."""
    _check_logits(logits)
    return _top_p(logits, validate.probability("p", p, allow_zero=False))


def _top_p(logits: torch.Tensor, p: float) -> torch.Tensor:
    if p == 1:
        return logits
    sorted_logits, order = logits.sort(dim=-1, descending=True)
    probs = sorted_logits.softmax(-1)
    before = probs.cumsum(-1) - probs  # mass of the more probable tokens
    drop_sorted = before >= p
    drop = drop_sorted.scatter(-1, order, drop_sorted)  # back to vocabulary order
    return logits.masked_fill(drop, float("-inf"))


def repetition_penalty(logits: torch.Tensor, previous: torch.Tensor, penalty: float) -> torch.Tensor:
    """CTRL's penalty (Keskar et al., 2019), as transformers applies it: every token id that already
    occurs in ``previous`` has its logit divided by ``penalty`` when positive and multiplied by it
    when negative (both make it less likely for penalty > 1), once however often it occurred.

    logits (B, V), previous (B, S) token ids -> (B, V)."""
    _check_logits(logits)
    penalty = validate.positive_float("penalty", penalty)
    if not isinstance(previous, torch.Tensor) or previous.dtype != torch.long:
        raise TypeError(f"previous must be a long tensor of token ids, got {_describe(previous)}")
    if previous.shape[:-1] != logits.shape[:-1] or previous.ndim == 0:
        raise ValueError(f"previous must have shape {tuple(logits.shape[:-1])} + (S,) to match logits of shape "
                         f"{tuple(logits.shape)}, got {tuple(previous.shape)}")
    _check_previous_ids(previous, logits.shape[-1])
    return _penalise(logits, previous, penalty)


def _check_previous_ids(previous: torch.Tensor, V: int) -> None:
    if previous.numel() and (int(previous.min()) < 0 or int(previous.max()) >= V):
        raise ValueError(f"previous holds ids outside [0, {V}) (V = logits.shape[-1]): "
                         f"min {int(previous.min())}, max {int(previous.max())}")


def _describe(x) -> str:
    return f"dtype {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__


def _penalise(logits: torch.Tensor, previous: torch.Tensor, penalty: float) -> torch.Tensor:
    seen = logits.gather(-1, previous)
    seen = torch.where(seen > 0, seen / penalty, seen * penalty)
    return logits.scatter(-1, previous, seen)


@dataclass(frozen=True)
class Sampling:
    """How the next token is chosen. ``temperature=0`` is greedy (argmax); the filters apply before
    sampling, in the order repetition penalty, top-k, top-p (transformers' order). ``seed`` makes a
    run reproducible: the same seed gives the same tokens."""

    temperature: float = 1.0
    top_k: int | None = None
    top_p: float = 1.0
    repetition_penalty: float = 1.0
    seed: int | None = None

    def __post_init__(self):
        validate.positive_float("temperature", self.temperature, allow_zero=True)
        if self.top_k is not None:
            validate.size("top_k", self.top_k)
        validate.probability("top_p", self.top_p, allow_zero=False)
        validate.positive_float("repetition_penalty", self.repetition_penalty)
        if self.seed is not None:
            validate.integer("seed", self.seed)

    def generator(self, device) -> torch.Generator | None:
        return None if self.seed is None else torch.Generator(device=device).manual_seed(self.seed)

    def choose(self, logits: torch.Tensor, previous: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """logits (B, V) of the next position, previous (B, S) ids so far -> next ids (B,).

        Called once per decode step: only O(1) checks up front; a failure is explained after it happens."""
        validate.tensor("logits", logits, ndim=2, floating=True)
        logits = logits.float()
        if self.repetition_penalty != 1:
            if not isinstance(previous, torch.Tensor) or previous.dtype != torch.long:
                raise TypeError(f"previous must be a long tensor of token ids, got {_describe(previous)}")
            if previous.ndim != 2 or previous.shape[0] != logits.shape[0]:
                raise ValueError(f"previous must have shape (B, S) with the B = {logits.shape[0]} rows of logits, "
                                 f"got {tuple(previous.shape)}")
            try:
                logits = _penalise(logits, previous, self.repetition_penalty)
            except RuntimeError:
                _check_previous_ids(previous, logits.shape[-1])  # the likely cause, named
                raise
        if self.temperature == 0:
            return logits.argmax(-1)
        if self.top_k is not None:
            logits = _top_k(logits, self.top_k)
        logits = _top_p(logits / self.temperature, self.top_p)
        try:
            return torch.multinomial(logits.softmax(-1), 1, generator=generator)[:, 0]
        except RuntimeError:
            _check_no_nan(logits)  # the likely cause, named
            raise


GREEDY = Sampling(temperature=0.0)


# ------------------------------------------------------------------------------------------ decoding


def left_pad(prompts: list[list[int]], pad_id: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Prompts of different lengths -> ids (B, T) and attention_mask (B, T), both int64 (the mask 1 for a real
    token, 0 for padding, as Hugging Face tokenizers return it), padded on the *left* so
    every prompt ends at position T-1, where the next token of every row is read off."""
    _check_prompts(prompts)
    pad_id = validate.integer("pad_id", pad_id, minimum=0)
    rows = [validate.token_ids(f"prompts[{i}]", p) for i, p in enumerate(prompts)]
    T = max(len(r) for r in rows)
    ids = torch.tensor([[pad_id] * (T - len(r)) + r for r in rows], dtype=torch.long)
    mask = torch.tensor([[0] * (T - len(r)) + [1] * len(r) for r in rows], dtype=torch.long)
    return ids, mask


def _check_prompts(prompts) -> None:
    if not isinstance(prompts, (list, tuple)):
        raise TypeError(f"prompts must be a non-empty list of token-id lists, got {type(prompts).__name__}")
    if not prompts:
        raise ValueError("prompts must be a non-empty list of token-id lists, got an empty one")


def _check_eos(eos_id, vocab_size: int) -> None:
    if eos_id is not None:
        validate.integer("eos_id", eos_id, 0, vocab_size - 1)


@torch.no_grad()
def stream_batch(model, prompts: list[list[int]], max_new_tokens: int, sampling: Sampling = GREEDY,
                 pad_id: int = 0, use_cache: bool = True, cache=None, pad=None):
    """Yield the next token of every prompt, (B,) per step, ``max_new_tokens`` times.

    With ``use_cache`` the prompts go through the model once (prefill, left-padded, with the
    attention mask) and every later step feeds one token per row; without it every step reruns the
    whole padded sequence. ``cache``: a ``KVCache`` (or ``SlidingWindowCache``) to use instead of a
    new one sized prompt + max_new_tokens. The model: a ``Decoder`` or a ``FastDecoder``.
    ``pad``: the function that pads the prompts, ``(prompts, pad_id) -> (ids (B, T), attention_mask (B, T))``
    with ``left_pad``'s signature (a notebook passes the learner's); None: ``left_pad``. Its result is used
    as it is (as int64), so padding on the wrong side shows in the tokens.
    """
    validate.flag("use_cache", use_cache)
    from llmlab.nn.kv_cache import KVCache

    validate.decoder("model", model)
    if not isinstance(sampling, Sampling):
        raise TypeError(f"sampling must be a llmlab.inference.generation.Sampling, got {type(sampling).__name__}")
    if cache is not None and not isinstance(cache, KVCache):
        raise TypeError(f"cache must be a KVCache or SlidingWindowCache (or None for a new one), "
                        f"got {type(cache).__name__}")
    pad_id = validate.integer("pad_id", pad_id, 0, model.cfg.vocab_size - 1)
    if pad is None:
        ids, mask = left_pad(prompts, pad_id)
    else:
        ids, mask = _padded(pad, prompts, pad_id)
    validate.token_budget(max_new_tokens, ids.shape[1], model.cfg.max_seq_len)
    device = model_device(model)
    ids, mask = ids.to(device), mask.to(device)
    generator = sampling.generator(device)
    B = ids.shape[0]
    if use_cache:
        cache = cache if cache is not None else KVCache.for_model(model, B, ids.shape[1] + max_new_tokens)
        step_ids, step_mask = ids, (mask if not bool(mask.all()) else None)
    for _ in range(max_new_tokens):
        if use_cache:
            logits = model(step_ids, attention_mask=step_mask, cache=cache, last_only=True)[:, -1]
        else:
            logits = model(ids, attention_mask=mask)[:, -1]
        previous = ids
        if sampling.repetition_penalty != 1:  # pads are not text: a row's last token stands in for them
            previous = torch.where(mask.bool(), ids, ids[:, -1:])
        nxt = sampling.choose(logits, previous, generator)
        yield nxt
        ids = torch.cat([ids, nxt[:, None]], 1)
        mask = torch.cat([mask, mask.new_ones(B, 1)], 1)
        step_ids, step_mask = nxt[:, None], None


def _padded(pad, prompts, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``pad(prompts, pad_id)`` as int64 (ids, attention_mask), refused unless both are (B, T) with T at least
    the longest prompt."""
    if not callable(pad):
        raise TypeError(f"pad must be a function (prompts, pad_id) -> (ids, attention_mask) like left_pad, or None, "
                        f"got {type(pad).__name__}")
    rows = [validate.token_ids(f"prompts[{i}]", p) for i, p in enumerate(prompts)]
    out = pad([list(r) for r in rows], pad_id)
    if not (isinstance(out, tuple) and len(out) == 2 and all(isinstance(t, torch.Tensor) for t in out)):
        raise TypeError(f"pad must return a pair of tensors (ids, attention_mask), got {type(out).__name__}")
    ids, mask = out
    longest = max(len(r) for r in rows)
    if ids.ndim != 2 or ids.shape != mask.shape or ids.shape[0] != len(rows) or ids.shape[1] < longest:
        raise ValueError(f"pad must return ids and attention_mask of one shape (B, T) = ({len(rows)}, >= {longest}), "
                         f"got {tuple(ids.shape)} and {tuple(mask.shape)}")
    if ids.is_floating_point() or ids.is_complex():
        raise TypeError(f"pad must return integer token ids, got dtype {ids.dtype}")
    return ids.long(), mask.long()


def generate_batch(model, prompts: list[list[int]], max_new_tokens: int, sampling: Sampling = GREEDY,
                   eos_id: int | None = None, pad_id: int = 0, use_cache: bool = True,
                   pad=None) -> list[list[int]]:
    """New tokens of each prompt, generated together in one left-padded batch; a row ends at
    ``eos_id`` (included) and the batch stops when every row has ended. Greedy results equal
    ``generate`` run on each prompt alone. ``pad``: the function that pads the prompts, with ``left_pad``'s
    signature (a notebook passes the learner's); None: ``left_pad`` (see ``stream_batch``)."""
    validate.decoder("model", model)
    _check_prompts(prompts)
    _check_eos(eos_id, model.cfg.vocab_size)
    if pad is not None and not callable(pad):
        raise TypeError(f"pad must be a function (prompts, pad_id) -> (ids, attention_mask) like left_pad, or None, "
                        f"got {type(pad).__name__}")
    out: list[list[int]] = [[] for _ in prompts]
    done = [False] * len(prompts)
    for nxt in stream_batch(model, prompts, max_new_tokens, sampling, pad_id, use_cache, pad=pad):
        for i, t in enumerate(nxt.tolist()):
            if not done[i]:
                out[i].append(t)
                done[i] = eos_id is not None and t == eos_id
        if all(done):
            break
    return out


def stream(model, ids, max_new_tokens: int, sampling: Sampling = GREEDY, eos_id: int | None = None,
           stop=None, use_cache: bool = True, cache=None):
    """Yield new tokens of one prompt (a list of ids or a 1-D tensor) one at a time, as ``generate``.
    ``measure_generation`` times this."""
    validate.decoder("model", model)
    if isinstance(ids, torch.Tensor) and ids.ndim != 1:
        raise ValueError(f"ids must be one prompt (1-D), got shape {tuple(ids.shape)}")
    prompt = validate.token_ids("ids", ids, model.cfg.vocab_size)
    _check_eos(eos_id, model.cfg.vocab_size)
    if stop is not None and not callable(stop):
        raise TypeError(f"stop must be a function of the new token ids (e.g. stop_strings(...)) or None, "
                        f"got {type(stop).__name__}")
    new: list[int] = []
    for nxt in stream_batch(model, [prompt], max_new_tokens, sampling, use_cache=use_cache, cache=cache):
        t = int(nxt[0])
        new.append(t)
        yield t
        if (eos_id is not None and t == eos_id) or (stop is not None and stop(new)):
            return


def generate(model, ids, max_new_tokens: int, sampling: Sampling = GREEDY, eos_id: int | None = None,
             stop=None, use_cache: bool = True) -> list[int]:
    """The new tokens after prompt ``ids``: ``max_new_tokens`` of them, or fewer when ``eos_id`` comes
    out (included) or ``stop(new_tokens)`` returns True (see ``stop_strings``)."""
    return list(stream(model, ids, max_new_tokens, sampling, eos_id, stop, use_cache))


def stop_strings(decode, strings: list[str]):
    """A ``stop`` predicate for ``generate``: True once the decoded new tokens contain any of
    ``strings`` (a string can end in the middle of a token, so the text is checked, not the ids)."""
    if isinstance(strings, str) or not strings or not all(isinstance(s, str) and s for s in strings):
        raise ValueError("strings must be a non-empty list of non-empty strings")
    if not callable(decode):
        raise TypeError("decode must be a function from token ids to text (e.g. tokenizer.decode)")
    return lambda new: any(s in decode(new) for s in strings)
