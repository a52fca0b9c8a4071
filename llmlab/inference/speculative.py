"""Speculative decoding (Leviathan et al., 2023; Chen et al., 2023): a cheap draft guesses, the big
model checks several guesses in one forward pass.

A decode step of a big model is bound by reading its weights, so scoring γ+1 positions costs about
as much as scoring one. Each round:

1. the draft proposes γ tokens d_1 .. d_γ (with probabilities q_i);
2. the target runs once on [last token, d_1 .. d_γ] and gets its distributions p_1 .. p_{γ+1};
3. d_i is accepted with probability min(1, p_i(d_i) / q_i(d_i)), in order; at the first rejection
   a token is drawn from the residual norm(max(0, p_i - q_i)) and the round ends; if all γ pass,
   a bonus token is drawn from p_{γ+1}.

The output has exactly the target's distribution; greedily (temperature 0) it *is* the target's
greedy output: accept while d_i = argmax p_i, then emit argmax p_i. If each guess is accepted with
probability α, independently, a round yields on average

    E[tokens per round] = (1 - α^(γ+1)) / (1 - α)          (γ + 1 when α = 1)

target passes: the speed-up, before paying for the draft.

Drafts here: ``ModelDraft`` (any smaller or quantized model with its own KV cache, e.g. int4
SmolLM2, or its first layers: self-speculative decoding) and ``PromptLookupDraft`` (copy the tokens
that followed the last occurrence of the current n-gram in the text so far; free, and very good when
the output quotes the prompt, as in summarising or editing code).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn as nn

from llmlab import model_device, validate
from llmlab.inference.generation import sample_from_probs
from llmlab.nn.kv_cache import KVCache
from llmlab.nn.model import Decoder


def expected_tokens_per_round(alpha: float, gamma: int) -> float:
    """(1 - α^(γ+1)) / (1 - α): tokens produced per target pass with acceptance rate α, γ guesses."""
    alpha = validate.probability("alpha", alpha)
    gamma = validate.size("gamma", gamma, minimum=0)
    if alpha == 1:
        return float(gamma + 1)
    return (1 - alpha ** (gamma + 1)) / (1 - alpha)


def speculative_accept(p: torch.Tensor, q: torch.Tensor, draft: torch.Tensor, u: torch.Tensor, v: float) -> list[int]:
    """One round's verdict. p (γ+1, V) target probabilities at each drafted position and after the
    last; q (γ, V) the draft's; draft (γ,) its tokens; u (γ,) uniforms for the accept tests; v a
    uniform for the final draw (by inverse CDF). Returns the accepted drafts and one more token."""
    validate.tensor("draft", draft, ndim=1)
    if draft.dtype.is_floating_point or draft.dtype.is_complex or draft.dtype == torch.bool:
        raise TypeError(f"draft must hold token ids (an integer tensor), got dtype {draft.dtype}")
    gamma = draft.shape[0]
    for name, t, ndim in (("p", p, 2), ("q", q, 2), ("u", u, 1)):
        validate.tensor(name, t, ndim=ndim, floating=True, finite=True)
    if p.shape[0] != gamma + 1:
        raise ValueError(f"p must have γ+1 = {gamma + 1} rows for the γ = {gamma} tokens of draft, got shape "
                         f"{tuple(p.shape)}")
    if q.shape != (gamma, p.shape[1]):
        raise ValueError(f"q must have shape (γ, V) = ({gamma}, {p.shape[1]}) for draft's γ and p's V, got "
                         f"{tuple(q.shape)}")
    if u.shape != (gamma,):
        raise ValueError(f"u must have shape (γ,) = ({gamma},), one uniform per token of draft, got {tuple(u.shape)}")
    if gamma and (int(draft.min()) < 0 or int(draft.max()) >= p.shape[1]):
        raise ValueError(f"draft holds ids outside [0, {p.shape[1]}) (V = p.shape[1]): min {int(draft.min())}, "
                         f"max {int(draft.max())}")
    v = validate.probability("v", v)
    return _accept(p, q, draft, u, v)


def _accept(p: torch.Tensor, q: torch.Tensor, draft: torch.Tensor, u: torch.Tensor, v: float) -> list[int]:
    """``speculative_accept`` without the checks: ``speculative_generate`` builds its arguments itself."""
    out: list[int] = []
    for i, d in enumerate(draft.tolist()):
        if u[i] < min(1.0, (p[i, d] / q[i, d]).item()):
            out.append(d)
            continue
        residual = (p[i] - q[i]).clamp(min=0)
        return out + [sample_from_probs(residual / residual.sum(), v)]
    return out + [sample_from_probs(p[-1] / p[-1].sum(), v)]


def greedy_accept(target: list[int], draft: list[int]) -> list[int]:
    """Greedy verdict: target (γ+1,) argmax tokens, draft (γ,) -> accepted drafts + the target's next."""
    target = validate.token_ids("target", target)
    draft = validate.token_ids("draft", draft, allow_empty=True)
    if len(target) != len(draft) + 1:
        raise ValueError(f"target must have len(draft) + 1 = {len(draft) + 1} tokens, got {len(target)}")
    return _greedy(target, draft)


def _greedy(target: list[int], draft: list[int]) -> list[int]:
    n = 0
    while n < len(draft) and draft[n] == target[n]:
        n += 1
    return draft[:n] + [target[n]]


class ModelDraft:
    """A draft model with its own KV cache, kept in step with the accepted text: after a rejection it
    simply truncates the cache to the tokens it still agrees with."""

    def __init__(self, model: nn.Module, max_len: int = 2048):
        validate.decoder("model", model)
        self.model, self.max_len = model, validate.size("max_len", max_len)
        self.cache: KVCache | None = None
        self.seen: list[int] = []  # the tokens whose keys and values are in the cache

    def propose(self, tokens: list[int], gamma: int, temperature: float = 0.0,
                generator: torch.Generator | None = None) -> tuple[list[int], torch.Tensor | None]:
        """γ guesses continuing ``tokens``, and their distributions q (γ, V) when sampling.

        Called once per round: O(1) checks, and the tokens that are new to the cache are checked
        (the model reads them anyway)."""
        if not isinstance(tokens, list):
            raise TypeError(f"tokens must be a list of token ids, got {type(tokens).__name__}")
        if not tokens:
            raise ValueError("tokens is empty: need at least one token to continue")
        gamma = validate.integer("gamma", gamma, minimum=0)
        room = min(self.max_len, self.model.cfg.max_seq_len)  # the draft's cache, and its context
        if len(tokens) + gamma - 1 > room:
            raise ValueError(f"gamma = {gamma} after {len(tokens)} tokens overflows the draft: len(tokens) + gamma - 1 "
                             f"must be <= {room} (its max_len {self.max_len} and context {self.model.cfg.max_seq_len})")
        temperature = validate.positive_float("temperature", temperature, allow_zero=True)
        if self.cache is None:
            self.cache = KVCache.for_model(self.model, 1, self.max_len)
        n = 0
        limit = min(len(self.seen), len(tokens) - 1)
        while n < limit and self.seen[n] == tokens[n]:
            n += 1
        self.cache.truncate(n)
        device = self.cache.k.device
        feed, guesses, qs = validate.token_ids("tokens", tokens[n:], self.model.cfg.vocab_size), [], []
        self.seen = tokens[:n]
        for _ in range(gamma):
            logits = self.model(torch.tensor([feed], device=device), cache=self.cache, last_only=True)[0, -1].float()
            self.seen = self.seen + feed
            if temperature == 0:
                nxt = int(logits.argmax())
            else:
                probs = (logits / temperature).softmax(-1)
                nxt = int(torch.multinomial(probs, 1, generator=generator))
                qs.append(probs)
            guesses.append(nxt)
            feed = [nxt]
        return guesses, (torch.stack(qs) if qs else None)


class PromptLookupDraft:
    """Propose the γ tokens that followed the most recent earlier occurrence of the text's last
    n-gram (n from ``max_ngram`` down to 1); nothing when there is no match (Saxena, 2023).

    ``lookup``: the function that finds them, ``(tokens, gamma, max_ngram) -> list of ids`` (a notebook
    passes the learner's ``prompt_lookup``); None: llmlab's own. It gets a copy of the tokens, and at
    most its first γ ids are proposed."""

    def __init__(self, max_ngram: int = 3, lookup=None):
        self.max_ngram = validate.size("max_ngram", max_ngram)
        if lookup is not None and not callable(lookup):
            raise TypeError(f"lookup must be a function (tokens, gamma, max_ngram) -> list of token ids, or None "
                            f"for llmlab's own, got {type(lookup).__name__}")
        self.lookup = lookup

    def propose(self, tokens: list[int], gamma: int, temperature: float = 0.0, generator=None):
        """(up to γ proposed tokens, None: no draft distribution). The ids in ``tokens`` are not checked
        again: ``speculative_generate`` checked them, and the list grows every round."""
        if not isinstance(tokens, list):
            raise TypeError(f"tokens must be a list of token ids, got {type(tokens).__name__}")
        gamma = validate.size("gamma", gamma, minimum=0)
        if self.lookup is None:
            return _lookup(tokens, gamma, self.max_ngram), None
        draft = self.lookup(list(tokens), gamma, self.max_ngram)
        if isinstance(draft, torch.Tensor):
            draft = draft.tolist()
        if not isinstance(draft, (list, tuple)) or not all(
                isinstance(t, int) and not isinstance(t, bool) for t in draft):
            raise TypeError(f"lookup must return a list of token ids, got {draft!r:.80}")
        return [int(t) for t in draft][:gamma], None


def prompt_lookup(tokens: list[int], gamma: int, max_ngram: int = 3) -> list[int]:
    """Up to γ tokens that followed the latest earlier match of the last n tokens (largest n first)."""
    tokens = validate.token_ids("tokens", tokens, allow_empty=True)
    gamma = validate.size("gamma", gamma, minimum=0)
    max_ngram = validate.size("max_ngram", max_ngram)
    return _lookup(tokens, gamma, max_ngram)


def _lookup(tokens: list[int], gamma: int, max_ngram: int) -> list[int]:
    """``prompt_lookup`` without the checks: called every round on a sequence that only grows."""
    for n in range(min(max_ngram, len(tokens) - 1), 0, -1):
        tail = tokens[-n:]
        for start in range(len(tokens) - n - 1, -1, -1):  # latest match first, excluding the tail itself
            if tokens[start:start + n] == tail:
                return tokens[start + n:start + n + gamma]
    return []


def layer_draft(model: Decoder, n_layers: int) -> Decoder:
    """Self-speculative draft: the same ``Decoder`` stopped after its first ``n_layers`` blocks (the
    final norm and LM head applied there, as early exit does). Shares the weights, costs n/L."""
    if not isinstance(model, Decoder):
        raise TypeError(f"model must be an llmlab Decoder, got {type(model).__name__}")
    validate.positive_int("n_layers", n_layers)
    if n_layers > model.cfg.n_layers:
        raise ValueError(f"n_layers must be at most the model's {model.cfg.n_layers} layers, got {n_layers}")
    with torch.device("meta"):  # a shell without storage: every module with weights is the model's own
        draft = Decoder(dataclasses.replace(model.cfg, n_layers=n_layers))
    draft.tok_embeddings, draft.norm, draft.output = model.tok_embeddings, model.norm, model.output
    draft.layers = nn.ModuleList(list(model.layers)[:n_layers])
    return draft.train(model.training)


@dataclass
class SpeculativeStats:
    rounds: int = 0  # target forward passes after the prefill
    proposed: int = 0
    accepted: int = 0

    def __post_init__(self):
        for name in ("rounds", "proposed", "accepted"):
            validate.integer(name, getattr(self, name), minimum=0)

    @property
    def acceptance_rate(self) -> float:
        return self.accepted / self.proposed if self.proposed else float("nan")

    @property
    def tokens_per_round(self) -> float:
        return (self.accepted + self.rounds) / self.rounds if self.rounds else float("nan")


def _verdict(out, gamma: int, vocab_size: int) -> list[int]:
    """An ``accept`` function's result as a list of ids, refused unless it holds 1 to γ+1 ids in [0, V)."""
    if isinstance(out, torch.Tensor):
        out = out.tolist()
    if not isinstance(out, (list, tuple)) or not all(isinstance(t, int) and not isinstance(t, bool) for t in out):
        raise TypeError(f"accept must return a list of token ids, got {out!r:.80}")
    if not 1 <= len(out) <= gamma + 1 or any(not 0 <= t < vocab_size for t in out):
        raise ValueError(f"accept must return the accepted drafts and one more token: 1 to γ+1 = {gamma + 1} ids "
                         f"in [0, {vocab_size}), got {list(out)!r:.80}")
    return [int(t) for t in out]


@torch.no_grad()
def speculative_generate(target: nn.Module, draft, ids, max_new_tokens: int, gamma: int = 4,
                         temperature: float = 0.0, seed: int | None = None,
                         eos_id: int | None = None, accept=None) -> tuple[list[int], SpeculativeStats]:
    """New tokens after ``ids`` from ``target``, drafted by ``draft`` (``ModelDraft`` or
    ``PromptLookupDraft``), and the acceptance statistics. Greedy (temperature 0) output equals
    ``generate(target, ids, max_new_tokens)``.

    ``accept``: a round's verdict when sampling (temperature > 0), with ``speculative_accept``'s signature
    ``(p (γ+1, V), q (γ, V), draft (γ,), u (γ,), v) -> accepted drafts + one token`` (a notebook passes the
    learner's); None: llmlab's own. A greedy round keeps the longest prefix of the draft that agrees with
    the target's argmax and calls no ``accept``. Its result must hold 1 to γ+1 token ids."""
    validate.decoder("target", target)
    if not callable(getattr(draft, "propose", None)):
        raise TypeError(f"draft must be a ModelDraft or PromptLookupDraft (an object with .propose), "
                        f"got {type(draft).__name__}")
    tokens = validate.token_ids("ids", ids, target.cfg.vocab_size)
    gamma = validate.positive_int("gamma", gamma)
    validate.token_budget(max_new_tokens, len(tokens), target.cfg.max_seq_len)
    if len(tokens) + max_new_tokens + gamma > target.cfg.max_seq_len:
        raise ValueError(f"prompt ({len(tokens)}) + max_new_tokens ({max_new_tokens}) + gamma ({gamma}) exceed the "
                         f"context of {target.cfg.max_seq_len}: the last round drafts up to gamma tokens past the end")
    validate.positive_float("temperature", temperature, allow_zero=True)
    if seed is not None:
        validate.integer("seed", seed)
    if eos_id is not None:
        validate.integer("eos_id", eos_id, 0, target.cfg.vocab_size - 1)
    if accept is not None and not callable(accept):
        raise TypeError(f"accept must be a function (p, q, draft, u, v) -> list of token ids (speculative_accept's "
                        f"signature), or None for llmlab's own, got {type(accept).__name__}")
    device = model_device(target)
    gen = None if seed is None else torch.Generator().manual_seed(seed)
    cache = KVCache.for_model(target, 1, len(tokens) + max_new_tokens + gamma + 1)
    n_prompt, stats = len(tokens), SpeculativeStats()
    if len(tokens) > 1:  # the target's cache holds every token but the last, whose logits come next
        target(torch.tensor([tokens[:-1]], device=device), cache=cache, last_only=True)
    while len(tokens) - n_prompt < max_new_tokens:
        guesses, q = draft.propose(tokens, gamma, temperature, gen)
        start = cache.length
        logits = target(torch.tensor([tokens[-1:] + guesses], device=device), cache=cache)[0].float()
        if temperature == 0:
            new = _greedy(logits.argmax(-1).tolist(), guesses)
        else:
            p = (logits / temperature).softmax(-1).cpu()
            if q is None:  # a deterministic draft (prompt lookup) puts all its mass on its guess
                q = torch.nn.functional.one_hot(torch.tensor(guesses, dtype=torch.long), p.shape[-1]).float()
            u = torch.rand(len(guesses), generator=gen)
            v = float(torch.rand((), generator=gen))
            draft_ids = torch.tensor(guesses, dtype=torch.long)
            if accept is None:
                new = _accept(p, q.cpu(), draft_ids, u, v)
            else:
                new = _verdict(accept(p, q.cpu(), draft_ids, u, v), len(guesses), p.shape[-1])
        stats.rounds += 1
        stats.proposed += len(guesses)
        stats.accepted += len(new) - 1
        cache.truncate(start + len(new))  # keep the last token and the accepted guesses
        tokens += new
        if eos_id is not None and eos_id in new:
            tokens = tokens[:tokens.index(eos_id, n_prompt) + 1]
            break
    return tokens[n_prompt:n_prompt + max_new_tokens], stats
