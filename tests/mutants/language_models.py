"""Common mistakes in 01_language_models."""
import math
from collections import Counter

import torch

from llmlab import ngram
from llmlab.inference import generation
from llmlab.metrics import lm
from tests.mutants import mistake

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
@mistake("check_count_ngrams", "stops one window early")
def ngrams_stop_early(tokens, n):
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n))


@mistake("check_count_ngrams", "n-grams overlap")
def ngrams_non_overlapping(tokens, n):
    return Counter(tuple(tokens[i : i + n]) for i in range(0, len(tokens) - n + 1, n))


@mistake("check_count_ngrams", "tuple(tokens[i:i + n])")
def ngrams_list_keys(tokens, n):
    return {str(tokens[i : i + n]): 1 for i in range(len(tokens) - n + 1)}


# next_token_probs
def _counts(ngram_counts, context, vocab_size):
    return torch.tensor([ngram_counts.get(tuple(context) + (v,), 0) for v in range(vocab_size)], dtype=torch.float64)


@mistake("check_next_token_probs", "k·V, not k")
def probs_denominator_plus_k(ngram_counts, context, k, vocab_size=256):
    c = _counts(ngram_counts, context, vocab_size)
    return (c + k) / (c.sum() + k)


@mistake("check_next_token_probs", "add k to every count")
def probs_no_smoothing(ngram_counts, context, k, vocab_size=256):
    c = _counts(ngram_counts, context, vocab_size)
    return c / c.sum()


@mistake("check_next_token_probs", "whole vocabulary")
def probs_seen_vocab(ngram_counts, context, k, vocab_size=256):
    c = _counts(ngram_counts, context, vocab_size)
    return (c + k) / (c.sum() + k * (c > 0).sum())


@mistake("check_next_token_probs", "count(context) + k·V")
def probs_denominator_no_k(ngram_counts, context, k, vocab_size=256):
    c = _counts(ngram_counts, context, vocab_size)
    return (c + k) / c.sum().clamp(min=1)


# sequence_log_prob
@mistake("check_sequence_log_prob", "that is the mean")
def seq_mean(log_probs, targets):
    return log_probs[torch.arange(len(targets)), targets].mean()


@mistake("check_sequence_log_prob", "not probabilities")
def seq_sum_probs(log_probs, targets):
    return log_probs[torch.arange(len(targets)), targets].exp().sum()


@mistake("check_sequence_log_prob", "torch.arange(T)")
def seq_column_indexing(log_probs, targets):
    return log_probs[:, targets].sum()


# perplexity
@mistake("check_perplexity", "average over tokens before exponentiating")
def ppl_exp_sum(log_probs, targets):
    return (-log_probs[torch.arange(len(targets)), targets].sum()).exp()


@mistake("check_perplexity", "not 2 **")
def ppl_base2(log_probs, targets):
    return 2 ** -log_probs[torch.arange(len(targets)), targets].mean()


@mistake("check_perplexity", "*negative*")
def ppl_no_minus(log_probs, targets):
    return log_probs[torch.arange(len(targets)), targets].mean().exp()


@mistake("check_perplexity", "perplexity is its exponential")
def ppl_is_cross_entropy(log_probs, targets):
    return -log_probs[torch.arange(len(targets)), targets].mean()


# temperature_softmax
@mistake("check_temperature_softmax", "divide by T")
def temp_multiplies(logits, temperature):
    if temperature == 0:
        return torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).to(logits.dtype)
    return torch.softmax(logits * temperature, -1)


@mistake("check_temperature_softmax", "subtract the largest logit")
def temp_no_max_subtraction(logits, temperature):
    if temperature == 0:
        return torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).to(logits.dtype)
    z = (logits / temperature).exp()
    return z / z.sum(-1, keepdim=True)


@mistake("check_temperature_softmax", "last dimension")
def temp_wrong_dim(logits, temperature):
    if temperature == 0:
        return torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).to(logits.dtype)
    return torch.softmax(logits / temperature, 0)


@mistake("check_temperature_softmax", "greedy decoding")
def temp_zero_unhandled(logits, temperature):
    return torch.softmax(logits / temperature, -1)


# sample_from_probs
@mistake("check_sample_from_probs", "strictly greater")
def sample_ge(probs, u):
    return int((probs.cumsum(0) < u).sum())


@mistake("check_sample_from_probs", "first index whose cumulative probability exceeds u")
def sample_off_by_one(probs, u):
    return min(int((probs.cumsum(0) <= u).sum()) + 1, len(probs) - 1)


@mistake("check_sample_from_probs", "first index whose cumulative probability exceeds u")
def sample_greedy(probs, u):
    return int(probs.argmax())


@mistake("check_sample_from_probs", "Python int")
def sample_tensor(probs, u):
    return (probs.cumsum(0) <= u).sum()[None].float()


# finetune_counts
@mistake("check_finetune_counts", "catastrophic forgetting")
def finetune_forgets(base, domain, weight):
    return Counter({g: weight * c for g, c in domain.items()})


@mistake("check_finetune_counts", "multiplied by weight")
def finetune_ignores_weight(base, domain, weight):
    return base + domain


@mistake("check_finetune_counts", "not the pre-training ones")
def finetune_weights_base(base, domain, weight):
    out = Counter({g: weight * c for g, c in base.items()})
    out.update(domain)
    return out


# ---------------------------------------------------------------- right on the examples, wrong in general

@mistake("check_count_ngrams", "do not pack ids into bytes", kind="overfit")
def ngrams_packed_bytes(tokens, n):
    packed = Counter(sum(t << (8 * j) for j, t in enumerate(tokens[i : i + n])) for i in range(len(tokens) - n + 1))
    return Counter({tuple((key >> (8 * j)) & 255 for j in range(n)): c for key, c in packed.items()})


@mistake("check_next_token_probs", "not 256", kind="overfit")
def probs_fixed_vocab(ngram_counts, context, k, vocab_size=256):
    c = _counts(ngram_counts, context, 256)
    return (c + k) / (c.sum() + k * 256)


@mistake("check_next_token_probs", "do not round them to ints", kind="overfit")
def probs_int_counts(ngram_counts, context, k, vocab_size=256):
    c = torch.tensor([int(ngram_counts.get(tuple(context) + (v,), 0)) for v in range(vocab_size)], dtype=torch.float64)
    return (c + k) / (c.sum() + k * vocab_size)


@mistake("check_sequence_log_prob", "one-hot product turns -inf", kind="overfit")
def seq_one_hot(log_probs, targets):
    return (log_probs * torch.nn.functional.one_hot(targets, log_probs.shape[-1])).sum()


@mistake("check_sequence_log_prob", "a product of 400 probabilities underflows")
def seq_product(log_probs, targets):
    return log_probs[torch.arange(len(targets)), targets].exp().prod().log()


@mistake("check_perplexity", "one-hot product turns -inf", kind="overfit")
def ppl_one_hot(log_probs, targets):
    picked = (log_probs * torch.nn.functional.one_hot(targets, log_probs.shape[-1])).sum(-1)
    return (-picked.mean()).exp()


@mistake("check_temperature_softmax", "logits.shape[-1] entries", kind="overfit")
def temp_one_hot_of_ten(logits, temperature):
    if temperature == 0:
        return torch.nn.functional.one_hot(logits.argmax(-1), 10).to(logits.dtype)  # the example's vocabulary
    return torch.softmax(logits / temperature, -1)


@mistake("check_temperature_softmax", "each row's own largest logit", kind="overfit")
def temp_global_max(logits, temperature):
    if temperature == 0:
        return torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).to(logits.dtype)
    z = (logits / temperature - (logits / temperature).max()).exp()
    return z / z.sum(-1, keepdim=True)


@mistake("check_temperature_softmax", "first largest logit", kind="overfit")
def temp_zero_all_maxima(logits, temperature):
    if temperature == 0:
        hits = (logits == logits.amax(-1, keepdim=True)).to(logits.dtype)
        return hits / hits.sum(-1, keepdim=True)
    return generation.temperature_softmax(logits, temperature)


@mistake("check_sample_from_probs", "last token with non-zero probability", kind="overfit")
def sample_clamp_last_index(probs, u):
    return min(int((probs.cumsum(0) <= u).sum()), len(probs) - 1)


@mistake("check_sample_from_probs", "last token with non-zero probability", kind="overfit")
def sample_past_the_end(probs, u):
    return int((probs.double().cumsum(0) <= u).sum())


@mistake("check_finetune_counts", "no int()", kind="overfit")
def finetune_int_weight(base, domain, weight):
    out = Counter(base)
    for gram, c in domain.items():
        out[gram] += int(weight * c)
    return out


# ---------------------------------------------------------------- changing the caller's inputs

@mistake("check_sequence_log_prob", "leave the inputs as they are", kind="inplace")
def seq_unsqueeze_targets(log_probs, targets):
    return log_probs.gather(-1, targets.unsqueeze_(-1)).sum()


@mistake("check_perplexity", "leave the inputs as they are", kind="inplace")
def ppl_negate_in_place(log_probs, targets):
    nll = log_probs.neg_()
    return nll[torch.arange(len(targets)), targets].mean().exp()


@mistake("check_temperature_softmax", "leave the inputs as they are", kind="inplace")
def temp_divide_in_place(logits, temperature):
    if temperature == 0:
        return torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).to(logits.dtype)
    logits /= temperature
    return torch.softmax(logits, -1)


@mistake("check_sample_from_probs", "leave the inputs as they are", kind="inplace")
def sample_cumsum_in_place(probs, u):
    cdf = probs.cumsum_(0)
    return min(int((cdf <= u).sum()), int(probs.nonzero().max()))


@mistake("check_finetune_counts", "leave the inputs as they are", kind="inplace")
def finetune_updates_base(base, domain, weight):
    base.update({gram: weight * c for gram, c in domain.items()})
    return base


# ---------------------------------------------------------------- another dtype than the reference's

@mistake("check_sequence_log_prob", "dtype", kind="dtype")
def seq_python_float(log_probs, targets):
    return torch.tensor(sum(log_probs[t, targets[t]].item() for t in range(len(targets))))


@mistake("check_perplexity", "dtype", kind="dtype")
def ppl_math_exp(log_probs, targets):
    return torch.tensor(math.exp(-log_probs[torch.arange(len(targets)), targets].mean().item()))


@mistake("check_temperature_softmax", "in the logits' dtype", kind="dtype")
def temp_int_one_hot(logits, temperature):
    if temperature == 0:
        return torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1])
    return torch.softmax(logits / temperature, -1)


@mistake("check_sample_from_probs", "Python int", kind="dtype")
def sample_float_index(probs, u):
    return float(generation.sample_from_probs(probs, u))


# ---------------------------------------------------------------- escapes found by a red team

@mistake("check_count_ngrams", "return a Counter")
def ngrams_plain_dict(tokens, n):
    counts = {}
    for i in range(len(tokens) - n + 1):
        gram = tuple(tokens[i : i + n])
        counts[gram] = counts.get(gram, 0) + 1
    return counts


@mistake("check_perplexity", "underflows", kind="overfit")
def ppl_product_of_probs(log_probs, targets):
    p = log_probs[torch.arange(len(targets)), targets].exp()
    return p.prod() ** (-1 / len(targets))


@mistake("check_perplexity", "float64 input gives a float64 perplexity", kind="dtype")
def ppl_float32_cast(log_probs, targets):
    lp = log_probs.float()
    return (-lp[torch.arange(len(targets)), targets].mean()).exp()


@mistake("check_sample_from_probs", "compute the CDF in float64", kind="overfit")
def sample_float32_cdf(probs, u):
    cdf = probs.float().cumsum(0)
    return min(int((cdf <= u).sum()), int(probs.nonzero().max()))


@mistake("check_sample_from_probs", "Python int")
def sample_int_tensor(probs, u):
    cdf = probs.double().cumsum(0)
    return (cdf <= u).sum().clamp(max=probs.nonzero().max())
