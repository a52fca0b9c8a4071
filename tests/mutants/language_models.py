"""Common mistakes in 01_language_models."""
from collections import Counter

import torch

from llmlab import generation, ngram
from llmlab.metrics import lm

REFERENCE = {
    "check_count_ngrams": ngram.count_ngrams,
    "check_next_token_probs": ngram.next_token_probs,
    "check_sequence_log_prob": lm.sequence_log_prob,
    "check_perplexity": lm.perplexity,
    "check_temperature_softmax": generation.temperature_softmax,
    "check_sample_from_probs": generation.sample_from_probs,
    "check_finetune_counts": ngram.finetune_counts,
}


# count_ngrams
def ngrams_stop_early(tokens, n):
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n))


def ngrams_non_overlapping(tokens, n):
    return Counter(tuple(tokens[i : i + n]) for i in range(0, len(tokens) - n + 1, n))


def ngrams_list_keys(tokens, n):
    return {str(tokens[i : i + n]): 1 for i in range(len(tokens) - n + 1)}


# next_token_probs
def _counts(ngram_counts, context, vocab_size):
    return torch.tensor([ngram_counts.get(tuple(context) + (v,), 0) for v in range(vocab_size)], dtype=torch.float64)


def probs_denominator_plus_k(ngram_counts, context, k, vocab_size=256):
    c = _counts(ngram_counts, context, vocab_size)
    return (c + k) / (c.sum() + k)


def probs_no_smoothing(ngram_counts, context, k, vocab_size=256):
    c = _counts(ngram_counts, context, vocab_size)
    return c / c.sum()


def probs_seen_vocab(ngram_counts, context, k, vocab_size=256):
    c = _counts(ngram_counts, context, vocab_size)
    return (c + k) / (c.sum() + k * (c > 0).sum())


def probs_denominator_no_k(ngram_counts, context, k, vocab_size=256):
    c = _counts(ngram_counts, context, vocab_size)
    return (c + k) / c.sum().clamp(min=1)


# sequence_log_prob
def seq_mean(log_probs, targets):
    return log_probs[torch.arange(len(targets)), targets].mean()


def seq_sum_probs(log_probs, targets):
    return log_probs[torch.arange(len(targets)), targets].exp().sum()


def seq_column_indexing(log_probs, targets):
    return log_probs[:, targets].sum()


# perplexity
def ppl_exp_sum(log_probs, targets):
    return (-log_probs[torch.arange(len(targets)), targets].sum()).exp()


def ppl_base2(log_probs, targets):
    return 2 ** -log_probs[torch.arange(len(targets)), targets].mean()


def ppl_no_minus(log_probs, targets):
    return log_probs[torch.arange(len(targets)), targets].mean().exp()


def ppl_is_cross_entropy(log_probs, targets):
    return -log_probs[torch.arange(len(targets)), targets].mean()


# temperature_softmax
def temp_multiplies(logits, temperature):
    if temperature == 0:
        return torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).to(logits.dtype)
    return torch.softmax(logits * temperature, -1)


def temp_no_max_subtraction(logits, temperature):
    if temperature == 0:
        return torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).to(logits.dtype)
    z = (logits / temperature).exp()
    return z / z.sum(-1, keepdim=True)


def temp_wrong_dim(logits, temperature):
    if temperature == 0:
        return torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).to(logits.dtype)
    return torch.softmax(logits / temperature, 0)


def temp_zero_unhandled(logits, temperature):
    return torch.softmax(logits / temperature, -1)


# sample_from_probs
def sample_ge(probs, u):
    return int((probs.cumsum(0) < u).sum())


def sample_off_by_one(probs, u):
    return min(int((probs.cumsum(0) <= u).sum()) + 1, len(probs) - 1)


def sample_greedy(probs, u):
    return int(probs.argmax())


def sample_tensor(probs, u):
    return (probs.cumsum(0) <= u).sum()[None].float()


# finetune_counts
def finetune_forgets(base, domain, weight):
    return Counter({g: weight * c for g, c in domain.items()})


def finetune_ignores_weight(base, domain, weight):
    return base + domain


def finetune_weights_base(base, domain, weight):
    out = Counter({g: weight * c for g, c in base.items()})
    out.update(domain)
    return out


MUTANTS = [
    ("check_count_ngrams", ngrams_stop_early, "stops one window early"),
    ("check_count_ngrams", ngrams_non_overlapping, "n-grams overlap"),
    ("check_count_ngrams", ngrams_list_keys, "tuple(tokens[i:i + n])"),
    ("check_next_token_probs", probs_denominator_plus_k, "k·V, not k"),
    ("check_next_token_probs", probs_no_smoothing, "add k to every count"),
    ("check_next_token_probs", probs_seen_vocab, "whole vocabulary"),
    ("check_next_token_probs", probs_denominator_no_k, "count(context) + k·V"),
    ("check_sequence_log_prob", seq_mean, "that is the mean"),
    ("check_sequence_log_prob", seq_sum_probs, "not probabilities"),
    ("check_sequence_log_prob", seq_column_indexing, "torch.arange(T)"),
    ("check_perplexity", ppl_exp_sum, "average over tokens before exponentiating"),
    ("check_perplexity", ppl_base2, "not 2 **"),
    ("check_perplexity", ppl_no_minus, "*negative*"),
    ("check_perplexity", ppl_is_cross_entropy, "perplexity is its exponential"),
    ("check_temperature_softmax", temp_multiplies, "divide by T"),
    ("check_temperature_softmax", temp_no_max_subtraction, "subtract the largest logit"),
    ("check_temperature_softmax", temp_wrong_dim, "last dimension"),
    ("check_temperature_softmax", temp_zero_unhandled, "greedy decoding"),
    ("check_sample_from_probs", sample_ge, "strictly greater"),
    ("check_sample_from_probs", sample_off_by_one, "first index whose cumulative probability exceeds u"),
    ("check_sample_from_probs", sample_greedy, "first index whose cumulative probability exceeds u"),
    ("check_sample_from_probs", sample_tensor, "Python int"),
    ("check_finetune_counts", finetune_forgets, "catastrophic forgetting"),
    ("check_finetune_counts", finetune_ignores_weight, "multiplied by weight"),
    ("check_finetune_counts", finetune_weights_base, "not the pre-training ones"),
]
