"""Zero-shot classification with a causal LM: score each label word as a continuation of a prompt.

For a prompt x (e.g. "Text: ... Topic:") and candidate label words c^(1..K) (" sports", " food", ...),
the model's preference for label k is the log-probability of its tokens after the prompt:

    s_k(x) = log p(c^(k) | x) = sum_j log p(c^(k)_j | x, c^(k)_<j)

and the prediction is argmax_k s_k. A label word may take several tokens (Chinese words in an English
BPE vocabulary take 2-6): their log-probabilities add up, so longer words are at a disadvantage
(some systems divide by the number of tokens; we do not).

A model has *priors* over label words that have nothing to do with the input ("technology" may be
likelier than "weather" after any prompt). Contextual calibration (Zhao et al., 2021, "Calibrate
Before Use") measures them with a content-free input such as "N/A" in the same prompt and
subtracts them: s_k(x) - s_k("N/A"). (They divide probabilities renormalised over the labels; in
log space that is this subtraction plus a constant per example, so the argmax is the same.)
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

from llmlab import model_device, validate


def _check_model(model) -> None:
    if not callable(model):
        raise TypeError(f"model must map token ids to logits (a Decoder or a function), got {type(model).__name__}")


def _id_lists(name: str, seqs, what: str) -> list[list[int]]:
    """``seqs``: a non-empty list of non-empty token-id lists, checked one by one."""
    if isinstance(seqs, (str, bytes)) or not isinstance(seqs, Iterable):
        raise TypeError(f"{name} must be a list of token-id lists, got {type(seqs).__name__}")
    out = [validate.token_ids(f"{name}[{i}]", s) for i, s in enumerate(seqs)]
    if not out:
        raise ValueError(f"{name} is empty: need at least one {what}")
    return out


def continuation_log_prob(model, prompt_ids, cont_ids) -> float:
    """log p(cont | prompt) = sum_j log p(cont_j | prompt, cont_<j), in nats, as a float.

    ``model(idx)`` maps ids (1, T) to logits (1, T, V). One forward pass over prompt + cont: the
    logits at position t predict token t + 1, so cont's tokens are predicted at positions
    len(prompt) - 1 ... len(prompt) + len(cont) - 2. The prompt itself is not scored.
    """
    _check_model(model)
    prompt = validate.token_ids("prompt_ids", prompt_ids)
    cont = validate.token_ids("cont_ids", cont_ids)
    ids = torch.tensor([prompt + cont], device=model_device(model))
    with torch.inference_mode():
        logits = model(ids)[0, len(prompt) - 1 : -1]  # (len(cont), V)
        log_probs = logits.float().log_softmax(-1)
        return log_probs.gather(-1, ids[0, len(prompt) :, None]).cpu().double().sum().item()


def label_log_probs(
    model,
    prompts: Sequence[Sequence[int]],
    labels: Sequence[Sequence[int]],
    batch_size: int = 16,
    pad_id: int = 0,
    progress: bool = False,
) -> torch.Tensor:
    """log p(labels[k] | prompts[i]) for every prompt and label: a float64 tensor (N, K) on the CPU.

    The same numbers as ``continuation_log_prob`` for every pair, with far fewer forward passes:
    the pair (i, k) needs the logits of the context prompts[i] + labels[k][:-1]; identical contexts
    are run once (with one-token labels, all K labels share the bare prompt), and contexts run in
    batches of ``batch_size``, sorted by length and left-padded with ``pad_id`` under an
    attention mask (``model(idx, attention_mask)``, as ``llmlab.nn.model.Decoder``).
    """
    validate.flag("progress", progress)
    _check_model(model)
    prompts = _id_lists("prompts", prompts, "prompt")
    labels = _id_lists("labels", labels, "label")
    batch_size = validate.size("batch_size", batch_size)
    vocab_size = getattr(getattr(model, "cfg", None), "vocab_size", None)  # a Decoder's; a function has none
    pad_id = validate.integer("pad_id", pad_id, 0, vocab_size - 1 if vocab_size else None)
    contexts: dict[tuple[int, ...], int] = {}  # context -> row in the list of unique contexts
    requests = []  # (i, k, context row, first scored position, targets)
    for i, p in enumerate(prompts):
        for k, c in enumerate(labels):
            ctx = tuple(p + c[:-1])
            row = contexts.setdefault(ctx, len(contexts))
            requests.append((i, k, row, len(p) - 1, c))
    unique = list(contexts)
    order = sorted(range(len(unique)), key=lambda r: len(unique[r]))
    device = model_device(model)
    log_probs_of: dict[int, torch.Tensor] = {}  # context row -> log-probs at the positions it is asked about
    needed: dict[int, int] = {}  # context row -> first position any request scores
    for _, _, row, start, _ in requests:
        needed[row] = min(needed.get(row, start), start)
    batches = [order[s : s + batch_size] for s in range(0, len(order), batch_size)]
    if progress:
        from tqdm.auto import tqdm

        batches = tqdm(batches, desc="label log-probs", leave=False)
    with torch.inference_mode():
        for rows in batches:
            T = max(len(unique[r]) for r in rows)
            ids = torch.full((len(rows), T), pad_id, dtype=torch.long)
            mask = torch.zeros(len(rows), T, dtype=torch.long)
            for j, r in enumerate(rows):
                n = len(unique[r])
                ids[j, T - n :] = torch.tensor(unique[r])
                mask[j, T - n :] = 1
            logits = model(ids.to(device), attention_mask=mask.to(device))  # (B, T, V)
            for j, r in enumerate(rows):
                pad = T - len(unique[r])
                log_probs_of[r] = logits[j, pad + needed[r] :].float().log_softmax(-1).cpu()
    out = torch.empty(len(prompts), len(labels), dtype=torch.float64)
    for i, k, row, start, c in requests:
        lp = log_probs_of[row][start - needed[row] : start - needed[row] + len(c)]  # (len(c), V)
        out[i, k] = lp.gather(-1, torch.tensor(c)[:, None]).double().sum()
    if not validate.all_finite(out):
        raise ValueError("the model produced NaN or infinite log-probabilities")
    return out


def calibrate(scores: torch.Tensor, content_free: torch.Tensor) -> torch.Tensor:
    """Contextual calibration in log space: scores (N, K) minus the content-free scores (K,) or (1, K)."""
    validate.tensor("scores", scores, floating=True)
    validate.tensor("content_free", content_free, floating=True)
    if scores.ndim != 2:
        raise ValueError(f"scores must have shape (N, K), got {tuple(scores.shape)}")
    if content_free.reshape(-1).shape[0] != scores.shape[1]:
        raise ValueError(f"content_free must have shape (K,) or (1, K) with K = {scores.shape[1]}, the columns of "
                         f"scores (N, K), got {tuple(content_free.shape)}")
    # -inf is a possible log-probability; NaN is not
    if torch.isnan(scores).any():
        raise ValueError("scores contain NaN")
    if torch.isnan(content_free).any():
        raise ValueError("content_free contains NaN")
    return scores - content_free.reshape(1, -1)
