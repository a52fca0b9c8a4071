"""Bad-looking values that are in fact fine: each such call must return normally.

Keyed like ``known.json`` (``module.function(argument=<kind>)``); the value says why, from the
function's docstring or the argument's meaning. Conservative: only what is clearly allowed; everything
else that is accepted today is listed in ``known.json`` as ``accepted``, to be fixed.
"""

# Reasons that many entries share.
_NAN = 'NaN in, NaN out: a check would read every value on each call of a computation that runs every step (a forward, a loss, an optimiser step), and the NaN shows in its result'
_HOT = 'a hot path that checks nothing on success (its error is explained only when the computation fails); this value does not make it fail'
_RECORD = 'History is the record that train() fills, not an input: its fields are not checked'
_RMS = "rms_norm is RMSNorm's computation without its checks, for hot loops (documented); RMSNorm checks eps and weight"
_ROPE = 'RoPE at a negative position is a rotation the other way: well defined; checking the values would cost a GPU sync per decode step'
_PROBE = "notebook 07's check calls it with the learner's parameters: a NaN there must fail that check with its hint, not raise here"

ACCEPTED: dict[str, str] = {
    "llmlab.compress.distill.distillation_loss(alpha=<zero>)": "alpha = 0 is ordinary training (documented)",
    "llmlab.compress.distill.soft_targets(logits=<empty>)":
        "logits (..., V): any number of leading dims, none of them required to be non-empty",
    "llmlab.compress.distill.soft_targets(logits=<extra_dim>)":
        "logits (..., V): any number of leading dims, none of them required to be non-empty",
    "llmlab.compress.distill.soft_targets(logits=<missing_dim>)":
        "logits (..., V): any number of leading dims, none of them required to be non-empty",
    "llmlab.compress.distill.topk_logits(logits=<empty>)":
        "logits (..., V): any number of leading dims, none of them required to be non-empty",
    "llmlab.compress.distill.topk_logits(logits=<extra_dim>)":
        "logits (..., V): any number of leading dims, none of them required to be non-empty",
    "llmlab.compress.distill.topk_logits(logits=<missing_dim>)":
        "logits (..., V): any number of leading dims, none of them required to be non-empty",
    "llmlab.compress.lowrank.LowRankLinear.forward(x=<empty>)":
        "x (..., K): any number of leading dims, none of them required to be non-empty",
    "llmlab.compress.lowrank.LowRankLinear.forward(x=<extra_dim>)":
        "x (..., K): any number of leading dims, none of them required to be non-empty",
    "llmlab.compress.lowrank.LowRankLinear.forward(x=<missing_dim>)":
        "x (..., K): any number of leading dims, none of them required to be non-empty",
    "llmlab.compress.sharing.assign(w=<empty>)":
        "w (any shape): any number of leading dims, none of them required to be non-empty",
    "llmlab.compress.sharing.assign(w=<extra_dim>)":
        "w (any shape): any number of leading dims, none of them required to be non-empty",
    "llmlab.compress.sharing.assign(w=<missing_dim>)":
        "w (any shape): any number of leading dims, none of them required to be non-empty",
    "llmlab.compress.sharing.kmeans(tol=<zero>)": "tol = 0: stop only at a fixed point (documented)",
    "llmlab.compress.sharing.kmeans(w=<extra_dim>)": "w (any shape): any number of leading dims",
    "llmlab.compress.sharing.kmeans(w=<missing_dim>)": "w (any shape): any number of leading dims",
    "llmlab.compress.sharing.reconstruct(idx=<empty>)":
        "the result has idx's shape, any shape: any number of leading dims, none of them required to be non-empty",
    "llmlab.compress.sharing.reconstruct(idx=<extra_dim>)":
        "the result has idx's shape, any shape: any number of leading dims, none of them required to be non-empty",
    "llmlab.compress.sharing.reconstruct(idx=<missing_dim>)":
        "the result has idx's shape, any shape: any number of leading dims, none of them required to be non-empty",
    "llmlab.inference.generation.Sampling(temperature=<zero>)": "temperature=0 is greedy (documented)",
    "llmlab.inference.generation.generate(eos_id=<zero>)": "0 is a token id like any other",
    "llmlab.inference.generation.generate_batch(eos_id=<zero>)": "0 is a token id like any other",
    "llmlab.inference.generation.sample_from_probs(u=<zero>)": "u in [0, 1) (documented)",
    "llmlab.inference.generation.stream(eos_id=<zero>)": "0 is a token id like any other",
    "llmlab.inference.generation.temperature_softmax(logits=<empty>)":
        "logits (..., V): any number of leading dims, none of them required to be non-empty",
    "llmlab.inference.generation.temperature_softmax(logits=<extra_dim>)":
        "logits (..., V): any number of leading dims, none of them required to be non-empty",
    "llmlab.inference.generation.temperature_softmax(logits=<missing_dim>)":
        "logits (..., V): any number of leading dims, none of them required to be non-empty",
    "llmlab.inference.generation.temperature_softmax(temperature=<zero>)": "T = 0 gives the one-hot argmax (documented)",
    "llmlab.inference.generation.top_k_filter(logits=<empty>)":
        "logits (..., V): any number of leading dims, none of them required to be non-empty",
    "llmlab.inference.generation.top_k_filter(logits=<extra_dim>)":
        "logits (..., V): any number of leading dims, none of them required to be non-empty",
    "llmlab.inference.generation.top_k_filter(logits=<missing_dim>)":
        "logits (..., V): any number of leading dims, none of them required to be non-empty",
    "llmlab.inference.generation.top_p_filter(logits=<empty>)":
        "logits (..., V): any number of leading dims, none of them required to be non-empty",
    "llmlab.inference.generation.top_p_filter(logits=<extra_dim>)":
        "logits (..., V): any number of leading dims, none of them required to be non-empty",
    "llmlab.inference.generation.top_p_filter(logits=<missing_dim>)":
        "logits (..., V): any number of leading dims, none of them required to be non-empty",
    "llmlab.interview.MockInterview.submit(value=<int>)": "any value is an answer to judge: a wrong one gets a verdict",
    "llmlab.interview.answer(value=<-inf>)": "any value is an answer to judge: a wrong one gets a verdict",
    "llmlab.interview.answer(value=<inf>)": "any value is an answer to judge: a wrong one gets a verdict",
    "llmlab.interview.answer(value=<nan>)": "any value is an answer to judge: a wrong one gets a verdict",
    "llmlab.interview.answer(value=<negative>)": "any value is an answer to judge: a wrong one gets a verdict",
    "llmlab.interview.answer(value=<zero>)": "any value is an answer to judge: a wrong one gets a verdict",
    "llmlab.interview.evaluate(value=<-inf>)": "any value is an answer to judge: a wrong one gets a verdict",
    "llmlab.interview.evaluate(value=<inf>)": "any value is an answer to judge: a wrong one gets a verdict",
    "llmlab.interview.evaluate(value=<nan>)": "any value is an answer to judge: a wrong one gets a verdict",
    "llmlab.interview.evaluate(value=<negative>)": "any value is an answer to judge: a wrong one gets a verdict",
    "llmlab.interview.evaluate(value=<zero>)": "any value is an answer to judge: a wrong one gets a verdict",
    "llmlab.inference.long_context.chunked_nll(ids=<list>)": "ids: list or (T,) (documented)",
    "llmlab.inference.long_context.window_perplexity(sink=<zero>)":
        "no sink tokens: a plain sliding window (the tests use sink=0)",
    "llmlab.metrics.classification.accuracy(y_pred=<negative_item>)":
        "class labels are arbitrary values; -1 is a label",
    "llmlab.metrics.classification.accuracy(y_true=<negative_item>)":
        "class labels are arbitrary values; -1 is a label",
    "llmlab.metrics.classification.average_precision(pos_label=<zero>)": "0 is one of the classes in y_true",
    "llmlab.metrics.classification.precision_recall_curve(pos_label=<zero>)": "0 is one of the classes in y_true",
    "llmlab.metrics.classification.precision_recall_f1(pos_label=<zero>)": "0 is one of the classes in y_true",
    "llmlab.metrics.classification.precision_recall_f1(zero_division=<nan>)":
        "zero_division: 'warn', 0.0, 1.0 or float('nan') (documented, as sklearn)",
    "llmlab.metrics.classification.roc_auc(pos_label=<zero>)": "0 is one of the classes in y_true",
    "llmlab.metrics.classification.roc_curve(pos_label=<zero>)": "0 is one of the classes in y_true",
    "llmlab.metrics.lm.strided_nll(ids=<list>)": "ids: a 1-D tensor or list (documented)",
    "llmlab.metrics.lm.strided_nll(window=<huge>)": "a window longer than the text scores it in one pass",
    "llmlab.metrics.lm.strided_perplexity(ids=<list>)": "ids: a 1-D tensor or list (as strided_nll)",
    "llmlab.metrics.lm.strided_perplexity(window=<huge>)": "a window longer than the text scores it in one pass",
    "llmlab.metrics.lm.strided_windows(window=<huge>)": "a window longer than the text covers it in one window",
    "llmlab.metrics.speed.SpeedReport(latency_median_s=<nan>)":
        "NaN when every run gave a single token: no decode step to time (measure_generation)",
    "llmlab.metrics.speed.SpeedReport(latency_median_s=<zero>)":
        "a clock's reading: a step shorter than its resolution",
    "llmlab.metrics.speed.SpeedReport(latency_p90_s=<nan>)":
        "NaN when every run gave a single token: no decode step to time (measure_generation)",
    "llmlab.metrics.speed.SpeedReport(latency_p90_s=<zero>)": "a clock's reading: a step shorter than its resolution",
    "llmlab.metrics.speed.SpeedReport(peak_memory_mib=<zero>)":
        "torch.cuda.max_memory_allocated is 0 when nothing was allocated on the device",
    "llmlab.metrics.speed.SpeedReport(ttft_s=<zero>)": "a clock's reading: a step shorter than its resolution",
    "llmlab.metrics.speed.decode_bytes_per_token(context_len=<zero>)": "no cached token yet: the weights only",
    "llmlab.metrics.speed.decode_bytes_per_token(weight_bytes=<huge>)":
        "bytes, not a count to allocate: 10**12 is a 500B-parameter model in bf16",
    "llmlab.metrics.speed.measure_generation(warmup=<zero>)": "no warm-up run: warmup + repeats runs in all",
    "llmlab.metrics.speed.percentile(q=<zero>)": "0 <= q <= 100 (documented)",
    "llmlab.metrics.text.BleuScore(bp=<zero>)": "BP = 0 for an empty output (documented)",
    "llmlab.metrics.text.BleuScore(hyp_len=<huge>)": "a token count, not a size to allocate",
    "llmlab.metrics.text.BleuScore(hyp_len=<zero>)": "an empty output has 0 tokens",
    "llmlab.metrics.text.BleuScore(ref_len=<huge>)": "a token count, not a size to allocate",
    "llmlab.metrics.text.BleuScore(ref_len=<zero>)": "an empty reference has 0 tokens",
    "llmlab.metrics.text.BleuScore(score=<zero>)": "BLEU is 0 when an order has no match (documented)",
    "llmlab.metrics.text.RougeScore(fmeasure=<zero>)": "0 when nothing is shared (documented)",
    "llmlab.metrics.text.RougeScore(precision=<zero>)": "0 when nothing is shared (documented)",
    "llmlab.metrics.text.RougeScore(recall=<zero>)": "0 when nothing is shared (documented)",
    "llmlab.metrics.text.bleu_from_stats(hyp_len=<huge>)": "a token count, not a size to allocate",
    "llmlab.metrics.text.bleu_from_stats(hyp_len=<zero>)": "an empty output has 0 tokens: BP = 0 (documented)",
    "llmlab.metrics.text.bleu_from_stats(ref_len=<huge>)": "a token count, not a size to allocate",
    "llmlab.metrics.text.bleu_from_stats(ref_len=<zero>)": "an empty reference has 0 tokens",
    "llmlab.metrics.text.lcs_length(a=<empty>)": "the LCS with an empty sequence is 0",
    "llmlab.metrics.text.lcs_length(b=<empty>)": "the LCS with an empty sequence is 0",
    "llmlab.metrics.text.modified_precision(hyp=<empty>)": "total = len(hyp) - n + 1, or 0 (documented)",
    "llmlab.metrics.text.modified_precision(n=<huge>)":
        "n longer than the hypothesis gives (0, 0): total = len(hyp) - n + 1, or 0 (documented)",
    "llmlab.metrics.text.modified_precision(refs=<empty_item>)":
        "an empty reference is a reference: it matches nothing",
    "llmlab.metrics.text.ngram_counts(max_order=<huge>)": "max_order is capped at len(tokens): no longer n-gram fits",
    "llmlab.metrics.text.ngram_counts(tokens=<empty>)": "an empty text has no n-grams",
    "llmlab.metrics.text.rouge_l(prediction=<empty>)": "either side empty gives 0 (documented)",
    "llmlab.metrics.text.rouge_l(target=<empty>)": "either side empty gives 0 (documented)",
    "llmlab.metrics.text.rouge_n(n=<huge>)": "a side with no n-grams gives 0 (documented)",
    "llmlab.metrics.text.rouge_n(prediction=<empty>)": "a side with no n-grams gives 0 (documented)",
    "llmlab.metrics.text.rouge_n(target=<empty>)": "a side with no n-grams gives 0 (documented)",
    "llmlab.metrics.text.sentence_bleu(hypothesis=<empty>)": "an empty output is an output: BP = 0 (documented)",
    "llmlab.metrics.text.sentence_bleu(references=<str>)": "references: str | list[str] (documented)",
    "llmlab.metrics.text.tokenize_13a(line=<empty>)": "an empty text is a text: it has no tokens",
    "llmlab.metrics.text.tokenize_rouge(text=<empty>)": "an empty text is a text: it has no tokens",
    "llmlab.metrics.text.tokenize_zh(line=<empty>)": "an empty text is a text: it has no tokens",
    "llmlab.mixed_precision.rounding_error(w=<extra_dim>)": "w: weights of any shape (documented)",
    "llmlab.mixed_precision.rounding_error(w=<missing_dim>)": "w: weights of any shape (documented)",
    "llmlab.mixed_precision.scaled_step(growth_interval=<huge>)": "a count of steps compared with a counter: nothing is allocated",
    "llmlab.mixed_precision.scaled_step(growth_tracker=<zero>)": "0 good steps so far: GradScaler's initial state",
    "llmlab.models.gguf.read_metadata(skip_prefix=<empty>)": "pass () to keep everything (documented)",
    "llmlab.models.smollm2.layer_from_gguf(i=<zero>)": "block 0 is the first block",
    "llmlab.ngram.NGramLM.generate(max_new_tokens=<zero>)": "0 new tokens: the prompt as it is",
    "llmlab.ngram.NGramLM.generate(prompt=<empty>)": "short contexts are padded with BOS (documented)",
    "llmlab.ngram.NGramLM.generate(temperature=<zero>)": "temperature 0 is greedy (temperature_softmax's T = 0)",
    "llmlab.ngram.NGramLM.probs(context=<empty>)": "short contexts are padded with BOS (documented)",
    "llmlab.ngram.context_counts(ngram_counts=<empty>)": "no n-gram, no context",
    "llmlab.ngram.count_ngrams(n=<huge>)": "no n-gram fits: an empty Counter, nothing allocated",
    "llmlab.ngram.count_ngrams(tokens=<empty>)": "an empty text has no n-gram",
    "llmlab.ngram.finetune_counts(base=<empty>)": "no pre-training counts: the domain's alone",
    "llmlab.ngram.finetune_counts(domain=<empty>)": "no domain counts: the base unchanged",
    "llmlab.ngram.next_token_probs(context=<empty>)": "the context of a unigram model is empty (documented)",
    "llmlab.ngram.next_token_probs(ngram_counts=<empty>)": "no counts: add-k smoothing gives the uniform distribution",
    "llmlab.nn.attention.MultiHeadAttention.forward(mask=<extra_dim>)":
        "mask broadcastable to (B, H, T, S): fewer or more leading dims of size 1 still broadcast",
    "llmlab.nn.attention.MultiHeadAttention.forward(mask=<missing_dim>)":
        "mask broadcastable to (B, H, T, S): fewer or more leading dims of size 1 still broadcast",
    "llmlab.nn.attention.MultiHeadAttention.forward(x=<empty>)":
        "an empty batch (B = 0) gives an empty output, as torch.nn.MultiheadAttention",
    "llmlab.nn.attention.attention_scores(k=<empty>)":
        "k (..., S, D): any number of leading dims, none of them required to be non-empty",
    "llmlab.nn.attention.attention_scores(k=<extra_dim>)": "k (..., S, D): any number of leading dims",
    "llmlab.nn.attention.attention_scores(k=<missing_dim>)": "k (..., S, D): any number of leading dims",
    "llmlab.nn.attention.attention_scores(q=<empty>)":
        "q (..., T, D): any number of leading dims, none of them required to be non-empty",
    "llmlab.nn.attention.attention_scores(q=<extra_dim>)": "q (..., T, D): any number of leading dims",
    "llmlab.nn.attention.attention_scores(q=<missing_dim>)": "q (..., T, D): any number of leading dims",
    "llmlab.nn.attention.merge_heads(x=<empty>)": "a reshape: an empty batch (B = 0) gives an empty batch",
    "llmlab.nn.attention.merge_heads(x=<int_dtype>)": "a reshape: any dtype",
    "llmlab.nn.attention.merge_heads(x=<nan>)": "a reshape: the values are not looked at",
    "llmlab.nn.attention.repeat_kv(x=<empty>)": "a reshape: an empty batch (B = 0) gives an empty batch",
    "llmlab.nn.attention.repeat_kv(x=<int_dtype>)": "a copy of heads: any dtype",
    "llmlab.nn.attention.repeat_kv(x=<nan>)": "a copy of heads: the values are not looked at",
    "llmlab.nn.attention.scaled_dot_product_attention(mask=<extra_dim>)":
        "mask broadcastable to (B, H, T, S): fewer or more leading dims of size 1 still broadcast",
    "llmlab.nn.attention.scaled_dot_product_attention(mask=<missing_dim>)":
        "mask broadcastable to (B, H, T, S): fewer or more leading dims of size 1 still broadcast",
    "llmlab.nn.attention.softmax(dim=<zero>)": "dim 0 is a valid dimension",
    "llmlab.nn.attention.softmax(x=<empty>)": "softmax along dim of a tensor of any shape",
    "llmlab.nn.attention.softmax(x=<extra_dim>)": "softmax along dim of a tensor of any shape",
    "llmlab.nn.attention.softmax(x=<missing_dim>)": "softmax along dim of a tensor of any shape",
    "llmlab.nn.attention.split_heads(x=<empty>)": "a reshape: an empty batch (B = 0) gives an empty batch",
    "llmlab.nn.attention.split_heads(x=<int_dtype>)": "a reshape: any dtype",
    "llmlab.nn.attention.split_heads(x=<nan>)": "a reshape: the values are not looked at",
    "llmlab.nn.kv_cache.KVCache.truncate(length=<zero>)": "length must be in [0, length filled] (documented)",
    "llmlab.nn.kv_cache.KVCache.update(layer=<zero>)": "layer 0 is the first layer",
    "llmlab.nn.kv_cache.SlidingWindowCache(sink=<zero>)":
        "no sink tokens: a plain sliding window (the tests use sink=0)",
    "llmlab.nn.kv_cache.SlidingWindowCache.for_model(sink=<zero>)":
        "no sink tokens: a plain sliding window (the tests use sink=0)",
    "llmlab.nn.kv_cache.write_kv(k_cache=<nan>)": "the cache's unfilled slots may hold anything (a torch.empty cache)",
    "llmlab.nn.kv_cache.write_kv(start=<zero>)": "slot 0 is the first slot",
    "llmlab.nn.kv_cache.write_kv(v_cache=<nan>)": "the cache's unfilled slots may hold anything (a torch.empty cache)",
    "llmlab.nn.layers.LayerNorm.forward(x=<empty>)":
        "x (..., C): any number of leading dims, none of them required to be non-empty",
    "llmlab.nn.layers.LayerNorm.forward(x=<extra_dim>)":
        "x (..., C): any number of leading dims, none of them required to be non-empty",
    "llmlab.nn.layers.LayerNorm.forward(x=<missing_dim>)":
        "x (..., C): any number of leading dims, none of them required to be non-empty",
    "llmlab.nn.layers.RMSNorm.forward(x=<empty>)":
        "x (..., C): any number of leading dims, none of them required to be non-empty",
    "llmlab.nn.layers.RMSNorm.forward(x=<extra_dim>)":
        "x (..., C): any number of leading dims, none of them required to be non-empty",
    "llmlab.nn.layers.RMSNorm.forward(x=<missing_dim>)":
        "x (..., C): any number of leading dims, none of them required to be non-empty",
    "llmlab.nn.layers.SwiGLU.forward(x=<empty>)":
        "x (..., C): any number of leading dims, none of them required to be non-empty",
    "llmlab.nn.layers.SwiGLU.forward(x=<extra_dim>)":
        "x (..., C): any number of leading dims, none of them required to be non-empty",
    "llmlab.nn.layers.SwiGLU.forward(x=<missing_dim>)":
        "x (..., C): any number of leading dims, none of them required to be non-empty",
    "llmlab.nn.layers.apply_rope_half(x=<empty>)":
        "x (..., T, D): any number of leading dims, none of them required to be non-empty",
    "llmlab.nn.layers.apply_rope_half(x=<extra_dim>)":
        "x (..., T, D): any number of leading dims, none of them required to be non-empty",
    "llmlab.nn.layers.apply_rope_half(x=<missing_dim>)":
        "x (..., T, D): any number of leading dims, none of them required to be non-empty",
    "llmlab.nn.layers.apply_rope_interleaved(x=<empty>)":
        "x (..., T, D): any number of leading dims, none of them required to be non-empty",
    "llmlab.nn.layers.apply_rope_interleaved(x=<extra_dim>)":
        "x (..., T, D): any number of leading dims, none of them required to be non-empty",
    "llmlab.nn.layers.apply_rope_interleaved(x=<missing_dim>)":
        "x (..., T, D): any number of leading dims, none of them required to be non-empty",
    "llmlab.nn.layers.gelu(x=<empty>)": "an elementwise activation, any shape",
    "llmlab.nn.layers.gelu(x=<extra_dim>)": "an elementwise activation, any shape",
    "llmlab.nn.layers.gelu(x=<missing_dim>)": "an elementwise activation, any shape",
    "llmlab.nn.layers.permute_for_interleaved(w=<int_dtype>)":
        "a permutation of rows: any dtype (quantized weights too)",
    "llmlab.nn.layers.permute_for_interleaved(w=<missing_dim>)":
        "w (H * D, ...): any trailing dims, none for a q or k bias (H * D,)",
    "llmlab.nn.layers.permute_for_interleaved(w=<nan>)": "a permutation of rows: the values are not looked at",
    "llmlab.nn.layers.permute_for_rotate_half(w=<int_dtype>)":
        "a permutation of rows: any dtype (quantized weights too)",
    "llmlab.nn.layers.permute_for_rotate_half(w=<missing_dim>)":
        "w (H * D, ...): any trailing dims, none for a q or k bias (H * D,)",
    "llmlab.nn.layers.permute_for_rotate_half(w=<nan>)": "a permutation of rows: the values are not looked at",
    "llmlab.nn.layers.rms_norm(x=<empty>)":
        "x (..., C): any number of leading dims, none of them required to be non-empty",
    "llmlab.nn.layers.rms_norm(x=<extra_dim>)":
        "x (..., C): any number of leading dims, none of them required to be non-empty",
    "llmlab.nn.layers.rms_norm(x=<missing_dim>)":
        "x (..., C): any number of leading dims, none of them required to be non-empty",
    "llmlab.nn.layers.rope_angles(positions=<extra_dim>)":
        "positions (..., T): a batch of one row of positions is allowed",
    "llmlab.nn.layers.rope_cos_sin(positions=<extra_dim>)":
        "positions (T,) or (B, T): a batch of one row of positions is allowed",
    "llmlab.nn.layers.rotate_half(x=<empty>)": "acts on the last dim only, any leading dims",
    "llmlab.nn.layers.rotate_half(x=<extra_dim>)": "acts on the last dim only, any leading dims",
    "llmlab.nn.layers.rotate_half(x=<int_dtype>)": "a permutation and a sign change of the last dim: any dtype",
    "llmlab.nn.layers.rotate_half(x=<missing_dim>)": "acts on the last dim only, any leading dims",
    "llmlab.nn.layers.rotate_half(x=<nan>)":
        "a permutation and a sign change of the last dim: the values are not looked at",
    "llmlab.nn.lora.LoRALinear(alpha=<negative>)":
        "the adapter's scale is alpha / r, any finite number: 0 turns it off, a negative one negates B A",
    "llmlab.nn.lora.LoRALinear(alpha=<zero>)":
        "the adapter's scale is alpha / r, any finite number: 0 turns it off, a negative one negates B A",
    "llmlab.nn.lora.LoRALinear.forward(x=<empty>)":
        "x (..., in): any number of leading dims, none of them required to be non-empty",
    "llmlab.nn.lora.LoRALinear.forward(x=<extra_dim>)":
        "x (..., in): any number of leading dims, none of them required to be non-empty",
    "llmlab.nn.lora.LoRALinear.forward(x=<missing_dim>)":
        "x (..., in): any number of leading dims, none of them required to be non-empty",
    "llmlab.nn.lora.add_lora(alpha=<negative>)":
        "the adapter's scale is alpha / r, any finite number: 0 turns it off, a negative one negates B A",
    "llmlab.nn.lora.add_lora(alpha=<zero>)":
        "the adapter's scale is alpha / r, any finite number: 0 turns it off, a negative one negates B A",
    "llmlab.nn.lora.lora_linear(alpha=<negative>)":
        "the adapter's scale is alpha / r, any finite number: 0 turns it off, a negative one negates B A",
    "llmlab.nn.lora.lora_linear(alpha=<zero>)":
        "the adapter's scale is alpha / r, any finite number: 0 turns it off, a negative one negates B A",
    "llmlab.nn.lora.lora_linear(x=<empty>)":
        "x (..., in): any number of leading dims, none of them required to be non-empty",
    "llmlab.nn.lora.lora_linear(x=<extra_dim>)":
        "x (..., in): any number of leading dims, none of them required to be non-empty",
    "llmlab.nn.lora.lora_linear(x=<missing_dim>)":
        "x (..., in): any number of leading dims, none of them required to be non-empty",
    "llmlab.nn.lora.merged_weight(alpha=<negative>)":
        "the adapter's scale is alpha / r, any finite number: 0 turns it off, a negative one negates B A",
    "llmlab.nn.lora.merged_weight(alpha=<zero>)":
        "the adapter's scale is alpha / r, any finite number: 0 turns it off, a negative one negates B A",
    "llmlab.nn.model.DecoderConfig(dropout=<zero>)": "dropout 0 is the default (no dropout)",
    "llmlab.nn.model.rope_rotary(positions=<extra_dim>)":
        "positions (T,) or (B, T): a batch of one row of positions is allowed",
    "llmlab.parallel.async_sgd.parameter_server(jitter=<zero>)": "jitter = 0: equal workers (documented)",
    "llmlab.parallel.async_sgd.staleness(events=<empty>)": "an empty log has no push: no staleness to report",
    "llmlab.parallel.data_parallel.shard_range(n=<huge>)":
        "arithmetic on a count: it returns a range, nothing is allocated (train bounds batch_size by the data)",
    "llmlab.parallel.data_parallel.shard_range(rank=<zero>)": "rank 0 of world_size 2 is a rank",
    "llmlab.parallel.data_parallel.train(steps=<zero>)":
        "no step: the model as it is (size('steps', minimum=0) on purpose)",
    "llmlab.parallel.data_parallel.worker_train(steps=<zero>)":
        "no step: the model as it is (train takes steps >= 0 on purpose)",
    "llmlab.parallel.pipeline.bubble_fraction(micro_batches=<huge>)":
        "a formula, (p - 1) / (m + p - 1): any counts give a fraction in [0, 1); nothing is allocated",
    "llmlab.parallel.pipeline.bubble_fraction(stages=<huge>)":
        "a formula, (p - 1) / (m + p - 1): any counts give a fraction in [0, 1); nothing is allocated",
    "llmlab.parallel.speedup.amdahl(n=<huge>)": "a formula: the tests take n = 10**9 to reach the limit 1 / (1 - f)",
    "llmlab.parallel.speedup.amdahl(parallel_fraction=<zero>)": "a fraction: 0 means nothing parallelises (speed-up 1)",
    "llmlab.parallel.speedup.comm_model(latency=<zero>)": "latency 0 is the default",
    "llmlab.parallel.speedup.comm_model(n=<huge>)": "a formula of n, like amdahl: nothing is allocated",
    "llmlab.parallel.speedup.comm_model(nbytes=<zero>)": "nothing to all-reduce: compute only (the tests use nbytes=0)",
    "llmlab.parallel.tensor_parallel.RowParallelLinear(rank=<zero>)": "rank 0 of world_size 2 is a rank",
    "llmlab.parallel.tensor_parallel.RowParallelLinear.forward(x=<empty>)":
        "x_r (..., in / N): any number of leading dims, none of them required to be non-empty",
    "llmlab.parallel.tensor_parallel.RowParallelLinear.forward(x=<extra_dim>)":
        "x_r (..., in / N): any number of leading dims, none of them required to be non-empty",
    "llmlab.parallel.tensor_parallel.RowParallelLinear.forward(x=<missing_dim>)":
        "x_r (..., in / N): any number of leading dims, none of them required to be non-empty",
    "llmlab.parallel.tensor_parallel.column_split(bias=<int_dtype>)":
        "splitting is indexing: any dtype and any values (NaN included) are copied as they are",
    "llmlab.parallel.tensor_parallel.column_split(bias=<nan>)":
        "splitting is indexing: any dtype and any values (NaN included) are copied as they are",
    "llmlab.parallel.tensor_parallel.column_split(rank=<zero>)": "rank 0 of world_size 2 is a rank",
    "llmlab.parallel.tensor_parallel.column_split(weight=<int_dtype>)":
        "splitting is indexing: any dtype and any values (NaN included) are copied as they are",
    "llmlab.parallel.tensor_parallel.column_split(weight=<nan>)":
        "splitting is indexing: any dtype and any values (NaN included) are copied as they are",
    "llmlab.parallel.tensor_parallel.ring_all_reduce_bytes(nbytes=<float>)":
        "a number of bytes as a float is fine (comm_model passes 1e6); the result is a float",
    "llmlab.parallel.tensor_parallel.ring_all_reduce_bytes(nbytes=<huge>)":
        "a formula: nothing is allocated, and 10**12 bytes (a terabyte of gradients) is a size to ask about",
    "llmlab.parallel.tensor_parallel.ring_all_reduce_bytes(nbytes=<zero>)":
        "nothing to send: 0 bytes (comm_model takes nbytes >= 0)",
    "llmlab.parallel.tensor_parallel.ring_all_reduce_bytes(world_size=<huge>)":
        "a formula of N: nothing is allocated, and large N shows the limit 2 nbytes",
    "llmlab.parallel.tensor_parallel.row_parallel_linear(x_part=<empty>)":
        "x_part (..., in / N): any number of leading dims, none of them required to be non-empty",
    "llmlab.parallel.tensor_parallel.row_parallel_linear(x_part=<extra_dim>)":
        "x_part (..., in / N): any number of leading dims, none of them required to be non-empty",
    "llmlab.parallel.tensor_parallel.row_parallel_linear(x_part=<missing_dim>)":
        "x_part (..., in / N): any number of leading dims, none of them required to be non-empty",
    "llmlab.parallel.tensor_parallel.row_split(rank=<zero>)": "rank 0 of world_size 2 is a rank",
    "llmlab.parallel.tensor_parallel.row_split(weight=<int_dtype>)":
        "splitting is indexing: any dtype and any values (NaN included) are copied as they are",
    "llmlab.parallel.tensor_parallel.row_split(weight=<nan>)":
        "splitting is indexing: any dtype and any values (NaN included) are copied as they are",
    "llmlab.parallel.tensor_parallel.shard_attention(rank=<zero>)": "rank 0 of world_size 2 is a rank",
    "llmlab.parallel.tensor_parallel.shard_mlp(rank=<zero>)": "rank 0 of world_size 2 is a rank",
    "llmlab.parallel.workers.fail_on_rank(bad=<huge>)":
        "bad names the rank that fails; one outside the group names none (the fuzz's own valid call: bad=1 of 1)",
    "llmlab.parallel.workers.fail_on_rank(bad=<negative>)":
        "bad names the rank that fails; one outside the group names none (the fuzz's own valid call: bad=1 of 1)",
    "llmlab.quant.affine.round_half_away(x=<empty>)": "elementwise rounding, any shape",
    "llmlab.quant.affine.round_half_away(x=<extra_dim>)": "elementwise rounding, any shape",
    "llmlab.quant.affine.round_half_away(x=<missing_dim>)": "elementwise rounding, any shape",
    "llmlab.quant.gguf_blocks.dequantize_q4_0(data=<extra_dim>)": "data (..., n * 18): any number of leading dims",
    "llmlab.quant.gguf_blocks.dequantize_q4_0(data=<missing_dim>)": "data (..., n * 18): any number of leading dims",
    "llmlab.quant.gguf_blocks.dequantize_q4_1(data=<extra_dim>)": "data (..., n * 20): any number of leading dims",
    "llmlab.quant.gguf_blocks.dequantize_q4_1(data=<missing_dim>)": "data (..., n * 20): any number of leading dims",
    "llmlab.quant.gguf_blocks.dequantize_q8_0(data=<extra_dim>)": "data (..., n * 34): any number of leading dims",
    "llmlab.quant.gguf_blocks.dequantize_q8_0(data=<missing_dim>)": "data (..., n * 34): any number of leading dims",
    "llmlab.quant.gguf_blocks.fake_quantize(x=<extra_dim>)":
        "x of any shape (the result has x's shape): any number of leading dims",
    "llmlab.quant.gguf_blocks.fake_quantize(x=<missing_dim>)":
        "x of any shape (the result has x's shape): any number of leading dims",
    "llmlab.quant.gguf_blocks.quantize_q4_0(x=<extra_dim>)": "x (..., K): any number of leading dims",
    "llmlab.quant.gguf_blocks.quantize_q4_0(x=<missing_dim>)": "x (..., K): any number of leading dims",
    "llmlab.quant.gguf_blocks.quantize_q4_1(x=<extra_dim>)": "x (..., K): any number of leading dims",
    "llmlab.quant.gguf_blocks.quantize_q4_1(x=<missing_dim>)": "x (..., K): any number of leading dims",
    "llmlab.quant.gguf_blocks.quantize_q8_0(x=<extra_dim>)": "x (..., K): any number of leading dims",
    "llmlab.quant.gguf_blocks.quantize_q8_0(x=<missing_dim>)": "x (..., K): any number of leading dims",
    "llmlab.quant.gguf_blocks.to_blocks(x=<empty>)":
        "x (..., K): any number of leading dims, none of them required to be non-empty",
    "llmlab.quant.gguf_blocks.to_blocks(x=<extra_dim>)":
        "x (..., K): any number of leading dims, none of them required to be non-empty",
    "llmlab.quant.gguf_blocks.to_blocks(x=<missing_dim>)":
        "x (..., K): any number of leading dims, none of them required to be non-empty",
    "llmlab.quant.gptq.HessianAccumulator.add(x=<extra_dim>)": "x (..., K): any number of leading dims",
    "llmlab.quant.gptq.HessianAccumulator.add(x=<missing_dim>)": "x (..., K): any number of leading dims",
    "llmlab.quant.gptq.hessian(x=<extra_dim>)": "x (..., K): any number of leading dims",
    "llmlab.quant.gptq.hessian(x=<missing_dim>)": "x (..., K): any number of leading dims",
    "llmlab.quant.linear.Int4WeightOnlyLinear.forward(x=<empty>)":
        "x (..., K): any number of leading dims, none of them required to be non-empty",
    "llmlab.quant.linear.Int4WeightOnlyLinear.forward(x=<extra_dim>)":
        "x (..., K): any number of leading dims, none of them required to be non-empty",
    "llmlab.quant.linear.Int4WeightOnlyLinear.forward(x=<missing_dim>)":
        "x (..., K): any number of leading dims, none of them required to be non-empty",
    "llmlab.quant.w4a8.W4A8Linear.forward(x=<empty>)":
        "x (..., K): any number of leading dims, none of them required to be non-empty",
    "llmlab.quant.w4a8.W4A8Linear.forward(x=<extra_dim>)":
        "x (..., K): any number of leading dims, none of them required to be non-empty",
    "llmlab.quant.w4a8.W4A8Linear.forward(x=<missing_dim>)":
        "x (..., K): any number of leading dims, none of them required to be non-empty",
    "llmlab.quant.linear.Int8WeightOnlyLinear.forward(x=<extra_dim>)":
        "x (..., K): any number of leading dims, none of them required to be non-empty",
    "llmlab.quant.linear.Int8WeightOnlyLinear.forward(x=<missing_dim>)":
        "x (..., K): any number of leading dims, none of them required to be non-empty",
    "llmlab.quant.smooth.FakeQuantLinear.forward(x=<empty>)":
        "x (..., K): any number of leading dims, none of them required to be non-empty",
    "llmlab.quant.smooth.FakeQuantLinear.forward(x=<extra_dim>)":
        "x (..., K): any number of leading dims, none of them required to be non-empty",
    "llmlab.quant.smooth.FakeQuantLinear.forward(x=<missing_dim>)":
        "x (..., K): any number of leading dims, none of them required to be non-empty",
    "llmlab.quant.smooth.absmax_fake_quantize(dim=<zero>)": "dim 0 is a valid dimension",
    "llmlab.quant.smooth.absmax_fake_quantize(x=<empty>)": "one scale per slice along dim, any shape",
    "llmlab.quant.smooth.absmax_fake_quantize(x=<extra_dim>)": "one scale per slice along dim, any shape",
    "llmlab.quant.smooth.absmax_fake_quantize(x=<missing_dim>)": "one scale per slice along dim, any shape",
    "llmlab.quant.smooth.mixed_int8_linear(x=<empty>)":
        "x (..., K): any number of leading dims, none of them required to be non-empty",
    "llmlab.quant.smooth.mixed_int8_linear(x=<extra_dim>)":
        "x (..., K): any number of leading dims, none of them required to be non-empty",
    "llmlab.quant.smooth.mixed_int8_linear(x=<missing_dim>)":
        "x (..., K): any number of leading dims, none of them required to be non-empty",
    "llmlab.quant.smooth.outlier_columns(x=<empty>)":
        "x (..., K): any number of leading dims, none of them required to be non-empty",
    "llmlab.quant.smooth.outlier_columns(x=<extra_dim>)":
        "x (..., K): any number of leading dims, none of them required to be non-empty",
    "llmlab.quant.smooth.outlier_columns(x=<missing_dim>)":
        "x (..., K): any number of leading dims, none of them required to be non-empty",
    "llmlab.quant.smooth.smoothquant_linear(x=<empty>)":
        "x (..., K): any number of leading dims, none of them required to be non-empty",
    "llmlab.quant.smooth.smoothquant_linear(x=<extra_dim>)":
        "x (..., K): any number of leading dims, none of them required to be non-empty",
    "llmlab.quant.smooth.smoothquant_linear(x=<missing_dim>)":
        "x (..., K): any number of leading dims, none of them required to be non-empty",
    "llmlab.quant.smooth.w8a8_linear(x=<empty>)":
        "x (..., K): any number of leading dims, none of them required to be non-empty",
    "llmlab.quant.smooth.w8a8_linear(x=<extra_dim>)":
        "x (..., K): any number of leading dims, none of them required to be non-empty",
    "llmlab.quant.smooth.w8a8_linear(x=<missing_dim>)":
        "x (..., K): any number of leading dims, none of them required to be non-empty",
    "llmlab.tokenization.bpe.ByteBPE(merges=<empty>)": "no merges: a byte-level tokenizer, one token per byte",
    "llmlab.inference.speculative.ModelDraft.propose(temperature=<zero>)": "temperature 0 is greedy, as in speculative_generate",
    "llmlab.inference.speculative.expected_tokens_per_round(alpha=<zero>)":
        "an acceptance rate in [0, 1): 0 gives one token per round",
    "llmlab.inference.speculative.speculative_accept(v=<zero>)": "v is a uniform in [0, 1)",
    "llmlab.inference.speculative.speculative_generate(eos_id=<zero>)": "0 is a token id like any other",
    "llmlab.tokenization.bpe.ByteBPE(special_tokens=<empty>)": "no special tokens is the default",
    "llmlab.tokenization.bpe.ByteBPE.decode(ids=<empty>)": "no ids decode to the empty text",
    "llmlab.tokenization.bpe.ByteBPE.encode(text=<empty>)": "an empty text is a text: it has no tokens",
    "llmlab.tokenization.bpe.ByteBPE.train(special_tokens=<empty>)": "no special tokens is the default",
    "llmlab.tokenization.bpe.ByteBPE.train(text=<empty>)":
        "an empty text has no pair to merge: training stops early (documented)",
    "llmlab.tokenization.bpe.apply_merges(ids=<empty>)": "an empty word stays empty (a case of the grader)",
    "llmlab.tokenization.bpe.apply_merges(ranks=<empty>)": "no merges: the ids stay as they are",
    "llmlab.tokenization.bpe.merge_pair(ids=<empty>)": "an empty word stays empty (a case of the grader)",
    "llmlab.tokenization.bpe.merge_pair(new_id=<zero>)": "0 is an id like any other",
    "llmlab.tokenization.bpe.pair_count_change(freq=<huge>)": "a word's frequency: a count, not a size to allocate",
    "llmlab.tokenization.bpe.pair_count_change(into=<empty>)": "an empty Counter to add the change to",
    "llmlab.tokenization.bpe.pair_count_change(new=<empty>)": "a word of no symbol has no pair",
    "llmlab.tokenization.bpe.pair_count_change(old=<empty>)": "a word of no symbol has no pair",
    "llmlab.tokenization.bpe.pair_counts(words=<empty_item>)":
        "a word of one symbol (or none) has no pair (a case of the grader)",
    "llmlab.tokenization.bpe.pretokenize(text=<empty>)": "an empty text is a text: it has no tokens",
    "llmlab.tokenization.bpe.train_bpe(special_tokens=<empty>)": "no special tokens is the default",
    "llmlab.tokenization.bpe.train_bpe(text=<empty>)":
        "an empty text has no pair to merge: training stops early (documented)",
    "llmlab.tokenization.bpe.train_bpe_naive(special_tokens=<empty>)": "no special tokens is the default",
    "llmlab.tokenization.bpe.train_bpe_naive(text=<empty>)":
        "an empty text has no pair to merge: training stops early (documented)",
    "llmlab.tokenization.bpe.unicode_to_bytes(token=<empty>)": "the empty token spells the empty bytes",
    "llmlab.tokenization.chinese.Dictionary(max_len=<huge>)":
        "a bound on a word's length: the scans stop at the text's end",
    "llmlab.tokenization.chinese.Dictionary(total=<huge>)": "a sum of word counts, not a size to allocate",
    "llmlab.tokenization.chinese.SegmentationScores(f1=<zero>)": "0 when no word span matches",
    "llmlab.tokenization.chinese.SegmentationScores(oov_recall=<nan>)":
        "nan when the gold text has no out-of-vocabulary word (documented)",
    "llmlab.tokenization.chinese.SegmentationScores(precision=<zero>)": "0 when no word span matches",
    "llmlab.tokenization.chinese.SegmentationScores(recall=<zero>)": "0 when no word span matches",
    "llmlab.tokenization.chinese.backward_max_match(max_len=<huge>)":
        "a bound on a word's length: the scan stops at the text's end",
    "llmlab.tokenization.chinese.backward_max_match(text=<empty>)": "an empty text is a text: it has no tokens",
    "llmlab.tokenization.chinese.best_route(sentence=<empty>)": "an empty sentence has no word",
    "llmlab.tokenization.chinese.bidirectional_max_match(max_len=<huge>)":
        "a bound on a word's length: the scan stops at the text's end",
    "llmlab.tokenization.chinese.bidirectional_max_match(text=<empty>)": "an empty text is a text: it has no tokens",
    "llmlab.tokenization.chinese.build_dag(sentence=<empty>)": "an empty sentence has no word",
    "llmlab.tokenization.chinese.cut(text=<empty>)": "an empty text is a text: it has no tokens",
    "llmlab.tokenization.chinese.forward_max_match(max_len=<huge>)":
        "a bound on a word's length: the scan stops at the text's end",
    "llmlab.tokenization.chinese.forward_max_match(text=<empty>)": "an empty text is a text: it has no tokens",
    "llmlab.tokenization.chinese.hmm_cut(text=<empty>)": "an empty text is a text: it has no tokens",
    "llmlab.tokenization.chinese.route_words(sentence=<empty>)": "an empty sentence has no word",
    "llmlab.tokenization.chinese.word_spans(words=<empty>)": "an empty segmentation has no span",
    "llmlab.tokenization.wordpiece.WordPiece(max_chars=<huge>)": "a bound on a word's length, not a size to allocate",
    "llmlab.tokenization.wordpiece.WordPiece.decode(ids=<empty>)": "no ids decode to the empty text",
    "llmlab.tokenization.wordpiece.WordPiece.encode(text=<empty>)": "an empty text is a text: it has no tokens",
    "llmlab.tokenization.wordpiece.basic_tokenize(text=<empty>)": "an empty text is a text: it has no tokens",
    "llmlab.tokenization.wordpiece.clean_text(text=<empty>)": "an empty text is a text: it has no tokens",
    "llmlab.tokenization.wordpiece.pad_cjk(text=<empty>)": "an empty text is a text: it has no tokens",
    "llmlab.tokenization.wordpiece.strip_accents(text=<empty>)": "an empty text is a text: it has no tokens",
    "llmlab.tokenization.wordpiece.wordpiece(max_chars=<huge>)": "a bound on a word's length, not a size to allocate",
    "llmlab.tokenization.wordpiece.wordpiece(unk=<unknown>)": "any piece can stand for an unknown word ([UNK] in BERT)",
    "llmlab.tokenization.wordpiece.wordpiece(vocab=<empty>)": "an empty vocabulary: every word is unknown",
    "llmlab.tokenization.wordpiece.wordpiece(word=<empty>)": "an empty word has no pieces",
    "llmlab.train.TrainConfig(min_delta=<zero>)": "min_delta 0 is the default",
    "llmlab.train.dropout(p=<zero>)": "p = 0 drops nothing",
    "llmlab.train.dropout(x=<empty>)": "elementwise, any shape",
    "llmlab.train.dropout(x=<extra_dim>)": "elementwise, any shape",
    "llmlab.train.dropout(x=<missing_dim>)": "elementwise, any shape",
    "llmlab.train.lr_at(min_lr=<zero>)": "min_lr 0 is the default",
    "llmlab.train.lr_at(step=<zero>)": "step 0 is the first step of the warm-up (documented)",
    "llmlab.train.should_stop(min_delta=<zero>)": "min_delta 0 is the default",
    "llmlab.models.minilm.mean_pool(attention_mask=<float_dtype>)": "a mask of 0.0 and 1.0 means what 0 and 1 do",
    "llmlab.metrics.lm.model_perplexity(ids=<missing_dim>)": "ids (T,) is one sequence (documented)",
    "llmlab.inference.speculative.PromptLookupDraft.propose(tokens=<negative_item>)":
        "the ids are not checked again each round (documented): speculative_generate checked them",
    "llmlab.validate.all_finite(x=<empty>)": "a question about any tensor: an empty one holds no NaN (True)",
    "llmlab.validate.all_finite(x=<extra_dim>)": "a question about a tensor of any shape",
    "llmlab.validate.all_finite(x=<missing_dim>)": "a question about a tensor of any shape",
    "llmlab.validate.all_finite(x=<int_dtype>)": "a question about any tensor: an integer one cannot hold NaN (True)",
    "llmlab.validate.all_finite(x=<nan>)": "the very question it answers: False, not an error",
    "llmlab.validate.probability(value=<zero>)": "0 is a probability, and allow_zero=True",
    "llmlab.validate.real(value=<zero>)": "0 >= minimum 0.0",
    "llmlab.validate.token_budget(max_new_tokens=<zero>)": "max_new_tokens: an int >= 0 (documented)",
    "llmlab.evaluation.zero_shot.calibrate(content_free=<extra_dim>)": "content_free (K,) or (1, K)",
    "llmlab.compress.distill.teacher_topk(batch_size=<huge>)":
        "batch_size >= B runs all sequences at once (documented)",
    "llmlab.compress.lowrank.breakeven_rank(k=<huge>)": "arithmetic on the sizes: nothing is allocated",
    "llmlab.compress.lowrank.breakeven_rank(n=<huge>)": "arithmetic on the sizes: nothing is allocated",
    "llmlab.compress.lowrank.lowrank_params(k=<huge>)": "arithmetic on the sizes: nothing is allocated",
    "llmlab.compress.lowrank.lowrank_params(n=<huge>)": "arithmetic on the sizes: nothing is allocated",
    "llmlab.compress.ratio.pruned_bits(density=<zero>)": "density in [0, 1]: 0 keeps no weight (checked)",
    "llmlab.compress.ratio.pruned_bits(index_bits=<huge>)": "arithmetic on bit counts: nothing is allocated",
    "llmlab.compress.ratio.pruned_bits(index_bits=<zero>)": "index_bits >= 0 (checked): positions that cost nothing",
    "llmlab.compress.ratio.pruned_bits(n_weights=<huge>)": "arithmetic on bit counts: nothing is allocated",
    "llmlab.compress.ratio.pruned_bits(value_bits=<huge>)": "arithmetic on bit counts: nothing is allocated",
    "llmlab.compress.sharing.codebook_bits_per_weight(codebook_bits=<huge>)":
        "arithmetic on bit counts: nothing is allocated",
    "llmlab.compress.sharing.codebook_bits_per_weight(n_weights=<huge>)":
        "arithmetic on bit counts: nothing is allocated",
    "llmlab.compress.sharing.init_codebook(w=<extra_dim>)": "w of any shape (its values are clustered, documented)",
    "llmlab.compress.sharing.init_codebook(w=<missing_dim>)": "w of any shape (its values are clustered, documented)",
    "llmlab.compress.sharing.kmeans(iters=<zero>)": "at most iters rounds (documented): 0 keeps the initial codebook",
    "llmlab.prune.apply.prune_model(sparsity=<zero>)": "sparsity in [0, 1): 0 prunes nothing (check_sparsity)",
    "llmlab.prune.magnitude.check_sparsity(sparsity=<zero>)": "sparsity in [0, 1): 0 prunes nothing (documented)",
    "llmlab.prune.magnitude.global_masks(sparsity=<zero>)": "sparsity in [0, 1): 0 prunes nothing (check_sparsity)",
    "llmlab.prune.magnitude.lowest_k_mask(k=<zero>)": "k in [0, n]: 0 removes nothing",
    "llmlab.prune.magnitude.magnitude_mask(sparsity=<zero>)": "sparsity in [0, 1): 0 prunes nothing (check_sparsity)",
    "llmlab.prune.magnitude.n_pruned(n=<huge>)": "arithmetic on a count: nothing is allocated",
    "llmlab.prune.magnitude.n_pruned(n=<zero>)": "n >= 0: of no weights none is pruned",
    "llmlab.prune.magnitude.n_pruned(sparsity=<zero>)": "sparsity in [0, 1): 0 prunes nothing (check_sparsity)",
    "llmlab.prune.magnitude.prune_mask(sparsity=<zero>)": "sparsity in [0, 1): 0 prunes nothing (check_sparsity)",
    "llmlab.prune.nm.check_nm(m=<huge>)": "any m >= n: check_nm allocates nothing",
    "llmlab.prune.nm.check_nm(n=<zero>)": "0 <= n <= m (documented): n = 0 prunes everything",
    "llmlab.prune.nm.is_nm_sparse(n=<zero>)": "0 <= n <= m (check_nm): asks whether w is all zeros",
    "llmlab.prune.nm.is_nm_sparse(w=<int_dtype>)": "counts non-zeros, which any dtype has",
    "llmlab.prune.nm.is_nm_sparse(w=<nan>)": "counts non-zeros: NaN is one, the answer is still defined",
    "llmlab.prune.nm.nm_mask(n=<zero>)": "0 <= n <= m (check_nm): n = 0 prunes everything",
    "llmlab.quant.affine.QuantizedTensor(q=<extra_dim>)":
        "q has the quantized tensor's shape, any shape (per-tensor quantization takes any tensor)",
    "llmlab.quant.affine.dequantize(q=<extra_dim>)":
        "scale and zero broadcast to q's shape (documented): q may have more dims",
    "llmlab.quant.affine.dequantize(q=<int_dtype>)": "codes in a float or an integer dtype (documented)",
    "llmlab.quant.affine.dequantize(scale=<missing_dim>)":
        "scale broadcasts to q's shape (documented): one scale for all",
    "llmlab.quant.affine.dequantize(zero=<int_dtype>)":
        "the zero point is an integer code: an integer dtype holds it exactly",
    "llmlab.quant.affine.dequantize(zero=<missing_dim>)":
        "zero broadcasts to q's shape (documented): one zero point for all",
    "llmlab.quant.affine.mse(x=<int_dtype>)": "compared in float64: any real dtype",
    "llmlab.quant.affine.mse(x_hat=<int_dtype>)": "compared in float64: any real dtype",
    "llmlab.quant.affine.quantize(scale=<missing_dim>)":
        "scale broadcasts to x's shape (documented): one scale for all",
    "llmlab.quant.affine.quantize(x=<extra_dim>)":
        "scale and zero broadcast to x's shape (documented): x may have more dims",
    "llmlab.quant.affine.quantize(zero=<int_dtype>)":
        "the zero point is an integer code: an integer dtype holds it exactly",
    "llmlab.quant.affine.quantize(zero=<missing_dim>)":
        "zero broadcasts to x's shape (documented): one zero point for all",
    "llmlab.quant.affine.relative_error(x=<int_dtype>)": "compared in float64: any real dtype",
    "llmlab.quant.affine.relative_error(x_hat=<int_dtype>)": "compared in float64: any real dtype",
    "llmlab.quant.affine.sqnr_db(x=<int_dtype>)": "compared in float64: any real dtype",
    "llmlab.quant.affine.sqnr_db(x_hat=<int_dtype>)": "compared in float64: any real dtype",
    "llmlab.quant.affine.symmetric_scale(absmax=<empty>)":
        "absmax of any shape (one per tensor, channel or group; documented)",
    "llmlab.quant.affine.symmetric_scale(absmax=<extra_dim>)":
        "absmax of any shape (one per tensor, channel or group; documented)",
    "llmlab.quant.affine.symmetric_scale(absmax=<missing_dim>)":
        "absmax of any shape (one per tensor, channel or group; documented)",
    "llmlab.quant.gguf_blocks.pack_nibbles(q=<empty>)": "(n, 32) codes: n = 0 blocks pack to (0, 16)",
    "llmlab.quant.gguf_blocks.q4_0_codes(blocks=<empty>)": "blocks (n, 32): n = 0 blocks give no codes",
    "llmlab.quant.gguf_blocks.q4_1_codes(blocks=<empty>)": "blocks (n, 32): n = 0 blocks give no codes",
    "llmlab.quant.gguf_blocks.q8_0_codes(blocks=<empty>)": "blocks (n, 32): n = 0 blocks give no codes",
    "llmlab.quant.gguf_blocks.q8_0_values(q=<negative>)": "Q8_0 codes are int8 (documented): -1 is a code",
    "llmlab.quant.gguf_blocks.unpack_nibbles(packed=<empty>)": "(n, 16) bytes: n = 0 blocks unpack to (0, 32)",
    "llmlab.quant.gptq.HessianAccumulator.add(x=<empty>)": "a batch of no rows adds nothing (documented)",
    "llmlab.quant.gptq.gptq_quantize(block_size=<huge>)": "block_size >= K is a single block (documented)",
    "llmlab.quant.gptq.gptq_quantize(damp=<zero>)": "damp in [0, 1): 0 is no damping (documented)",
    "llmlab.quant.gptq.inverse_hessian_factor(H=<extra_dim>)": "H (..., K, K): any number of leading dims",
    "llmlab.quant.gptq.inverse_hessian_factor(damp=<zero>)": "damp >= 0: 0 is no damping (documented)",
    "llmlab.quant.linear.Int8WeightOnlyLinear(q=<negative>)": "int8 codes are signed, [-127, 127]: -1 is a code",
    "llmlab.quant.linear.Int8WeightOnlyLinear.forward(x=<empty>)":
        "x (..., K): any number of leading dims, none of them required to be non-empty",
    "llmlab.quant.smooth.smooth_scales(alpha=<zero>)": "alpha in [0, 1]: 0 leaves all of the range to the activations",
    "llmlab.quant.smooth.smoothquant_linear(alpha=<zero>)":
        "alpha in [0, 1]: 0 leaves all of the range to the activations",
    "llmlab.data.chinese_sentences(min_chars=<zero>)": "at least 0 Han characters: every sentence is kept",
    "llmlab.data.train_test_split_items(items=<empty>)": "no items split into two empty lists",
    "llmlab.evaluation.probe.fit_logistic_regression(l2=<zero>)":
        "l2 >= 0: 0 is plain maximum likelihood (documented: strictly convex when l2 > 0)",
    "llmlab.evaluation.probe.logistic_loss(l2=<zero>)": "l2 >= 0: 0 is the unregularised cross-entropy",
    "llmlab.evaluation.probe.predict_proba(X=<empty>)": "X (N, D): N = 0 examples give (0, K) probabilities",
    "llmlab.evaluation.zero_shot.calibrate(scores=<empty>)": "scores (N, K): N = 0 rows calibrate to (0, K)",
    "llmlab.inference.early_exit.ExitPoint(agreement=<zero>)": "a share in [0, 1]: no position agrees",
    "llmlab.inference.early_exit.ExitPoint(threshold=<negative>)":
        "any finite τ: τ <= 0 exits at the first exit, as τ = 0 (the tests use 0.0 and 1.01)",
    "llmlab.inference.early_exit.ExitPoint(threshold=<zero>)": "τ = 0 exits at the first exit (the tests use it)",
    "llmlab.inference.early_exit.exit_tradeoff(thresholds=<empty>)": "no thresholds, no trade-off points",
    "llmlab.inference.early_exit.choose_exit(threshold=<zero>)": "τ = 0 exits at the first exit (a grader case)",
    "llmlab.inference.early_exit.choose_exit(threshold=<negative>)": "any τ: τ <= 0 exits at the first exit, as τ = 0",
    "llmlab.inference.early_exit.choose_exit(threshold=<inf>)": "τ = inf never exits early: every position takes the last exit (documented)",
    "llmlab.inference.early_exit.choose_exit(threshold=<-inf>)": "any τ: τ = -inf exits at the first exit, as τ = 0",
    "llmlab.inference.long_context.masked_nll(ids=<list>)": "ids: list or (T,) (documented)",
    "llmlab.inference.long_context.sliding_window_mask(sink=<zero>)": "no sink tokens: a plain sliding window (documented)",
    "llmlab.metrics.speed.speed_metrics(t_start=<zero>)": "a clock's reading: any number, the figures are differences",
    "llmlab.metrics.speed.speed_metrics(t_start=<negative>)": "a clock's reading: any number, the figures are differences",
    "llmlab.inference.generation.generate(max_new_tokens=<zero>)":
        "max_new_tokens >= 0 (validate.token_budget): 0 new tokens (the tests use it)",
    "llmlab.inference.generation.generate_batch(max_new_tokens=<zero>)":
        "max_new_tokens >= 0 (validate.token_budget): 0 new tokens",
    "llmlab.inference.generation.stream(max_new_tokens=<zero>)":
        "max_new_tokens >= 0 (validate.token_budget): 0 new tokens",
    "llmlab.inference.generation.stream_batch(max_new_tokens=<zero>)":
        "max_new_tokens >= 0 (validate.token_budget): 0 new tokens",
    "llmlab.inference.long_context.window_perplexity(ids=<list>)": "ids: list or (T,) (documented)",
    "llmlab.inference.speculative.ModelDraft.propose(gamma=<zero>)": "γ = 0 drafts nothing (a grader case)",
    "llmlab.inference.speculative.PromptLookupDraft.propose(gamma=<zero>)": "γ = 0 drafts nothing (a grader case)",
    "llmlab.inference.speculative.PromptLookupDraft.propose(tokens=<empty>)":
        "an empty text has no n-gram to match: no proposal",
    "llmlab.inference.speculative.SpeculativeStats(accepted=<huge>)": "a counter: any count >= 0, nothing allocated",
    "llmlab.inference.speculative.SpeculativeStats(accepted=<zero>)": "a counter: 0 is its default",
    "llmlab.inference.speculative.SpeculativeStats(proposed=<huge>)": "a counter: any count >= 0, nothing allocated",
    "llmlab.inference.speculative.SpeculativeStats(proposed=<zero>)": "a counter: 0 is its default",
    "llmlab.inference.speculative.SpeculativeStats(rounds=<huge>)": "a counter: any count >= 0, nothing allocated",
    "llmlab.inference.speculative.SpeculativeStats(rounds=<zero>)": "a counter: 0 is its default",
    "llmlab.inference.speculative.expected_tokens_per_round(gamma=<zero>)":
        "γ = 0: one token per round (a grader case)",
    "llmlab.inference.speculative.prompt_lookup(gamma=<zero>)": "γ = 0 proposes nothing",
    "llmlab.inference.speculative.prompt_lookup(tokens=<empty>)":
        "an empty text has no n-gram to match: no proposal (allow_empty)",
    "llmlab.inference.speculative.speculative_generate(max_new_tokens=<zero>)":
        "max_new_tokens >= 0 (validate.token_budget): 0 new tokens",
    "llmlab.interview.Question(answer=<negative>)": "any finite number can be a numeric answer (as validate() allows)",
    "llmlab.interview.Question(answer=<zero>)": "any finite number can be a numeric answer (as validate() allows)",
    "llmlab.interview.Question(mistakes=<empty>)": "no catalogued slips (validate()'s default, withhold()'s value)",
    "llmlab.interview.Question(options=<empty>)": "a numeric question has no options (the default)",
    "llmlab.interview.Question(tolerance=<zero>)": "tolerance in [0, 0.5): 0 is an exact answer (withhold() uses it)",
    "llmlab.interview.withhold(items=<empty>)": "no questions, nothing to withhold",
    "llmlab.models.gguf.read_metadata(skip_prefix=<str>)": "a str is one prefix, as for str.startswith (documented)",
    "llmlab.models.minilm.embed(sentences=<empty>)": "no sentences embed to (0, C)",
    "llmlab.quant.smooth.FakeQuantLinear(outlier_threshold=<zero>)":
        "threshold >= 0: 0 computes every non-zero channel in float",
    "llmlab.quant.smooth.mixed_int8_linear(threshold=<zero>)":
        "threshold >= 0 (documented): 0 computes every non-zero channel in float",
    "llmlab.quant.smooth.outlier_columns(threshold=<zero>)":
        "threshold >= 0 (documented): 0 flags every channel with a non-zero value",
    "llmlab.validate.explain_input(x=<empty>)":
        "an x of the right width was not the cause: explain_input returns and the caller re-raises",
    "llmlab.validate.explain_input(x=<extra_dim>)":
        "an x of the right width was not the cause: explain_input returns and the caller re-raises",
    "llmlab.validate.explain_input(x=<missing_dim>)":
        "an x of the right width was not the cause: explain_input returns and the caller re-raises",
    "llmlab.validate.explain_input(x=<nan>)":
        "an x of the right width was not the cause: explain_input returns and the caller re-raises",
    "llmlab.validate.zero_one_mask(mask=<extra_dim>)":
        "a mask of any shape: the caller checks it against its ids",
    "llmlab.validate.zero_one_mask(mask=<missing_dim>)":
        "a mask of any shape: the caller checks it against its ids",
    "llmlab.compress.distill.distillation_loss(student_logits=<nan>)":
        _NAN,
    "llmlab.compress.distill.distillation_loss(teacher_logits=<nan>)":
        _NAN,
    "llmlab.compress.distill.kd_loss(student_logits=<nan>)":
        _NAN,
    "llmlab.compress.distill.kd_loss(teacher_logits=<nan>)":
        _NAN,
    "llmlab.compress.distill.kd_loss_topk(student_logits=<nan>)":
        _NAN,
    "llmlab.compress.distill.kd_loss_topk(top_values=<nan>)":
        _NAN,
    "llmlab.compress.distill.soft_targets(logits=<nan>)":
        _NAN,
    "llmlab.compress.distill.topk_logits(logits=<nan>)":
        _NAN,
    "llmlab.compress.lowrank.LowRankLinear.forward(x=<nan>)":
        _NAN,
    "llmlab.evaluation.probe.logistic_loss(W=<nan>)":
        _PROBE,
    "llmlab.evaluation.probe.logistic_loss(b=<nan>)":
        _PROBE,
    "llmlab.evaluation.probe.predict_proba(W=<nan>)":
        _PROBE,
    "llmlab.evaluation.probe.predict_proba(b=<nan>)":
        _PROBE,
    "llmlab.inference.generation.left_pad(pad_id=<huge>)":
        "left_pad does not know the vocabulary (the ids of prompts are not bounded either); generate_batch bounds pad_id by the model's",
    "llmlab.model_device(model=<None>)":
        'anything without parameters or buffers has no device: None (documented)',
    "llmlab.model_device(model=<str>)":
        'anything without parameters or buffers has no device: None (documented)',
    "llmlab.nn.attention.MultiHeadAttention.forward(x=<nan>)":
        _NAN,
    "llmlab.nn.kv_cache.KVCache.update(k=<int_dtype>)":
        _HOT,
    "llmlab.nn.kv_cache.KVCache.update(k=<nan>)":
        _NAN,
    "llmlab.nn.kv_cache.KVCache.update(layer=<negative>)":
        'a negative layer counts from the end, as Python indexing does',
    "llmlab.nn.kv_cache.KVCache.update(v=<int_dtype>)":
        _HOT,
    "llmlab.nn.kv_cache.KVCache.update(v=<missing_dim>)":
        "v broadcasts into the cache's slot; a hot path checks nothing on success",
    "llmlab.nn.kv_cache.KVCache.update(v=<nan>)":
        _NAN,
    "llmlab.nn.layers.LayerNorm.forward(x=<nan>)":
        _NAN,
    "llmlab.nn.layers.RMSNorm.forward(x=<int_dtype>)":
        _HOT,
    "llmlab.nn.layers.RMSNorm.forward(x=<nan>)":
        _NAN,
    "llmlab.nn.layers.SwiGLU.forward(x=<nan>)":
        _NAN,
    "llmlab.nn.layers.rms_norm(eps=<-inf>)":
        _RMS,
    "llmlab.nn.layers.rms_norm(eps=<inf>)":
        _RMS,
    "llmlab.nn.layers.rms_norm(eps=<nan>)":
        _RMS,
    "llmlab.nn.layers.rms_norm(eps=<negative>)":
        _RMS,
    "llmlab.nn.layers.rms_norm(eps=<zero>)":
        _RMS,
    "llmlab.nn.layers.rms_norm(weight=<extra_dim>)":
        _RMS,
    "llmlab.nn.layers.rms_norm(weight=<int_dtype>)":
        _RMS,
    "llmlab.nn.layers.rms_norm(weight=<missing_dim>)":
        _RMS,
    "llmlab.nn.layers.rms_norm(weight=<nan>)":
        _RMS,
    "llmlab.nn.layers.rms_norm(x=<int_dtype>)":
        _RMS,
    "llmlab.nn.layers.rms_norm(x=<nan>)":
        _RMS,
    "llmlab.nn.layers.rope_angles(positions=<negative>)":
        _ROPE,
    "llmlab.nn.layers.rope_cos_sin(positions=<negative>)":
        _ROPE,
    "llmlab.nn.lora.LoRALinear.forward(x=<nan>)":
        _NAN,
    "llmlab.nn.lora.lora_linear(A=<nan>)":
        _NAN,
    "llmlab.nn.lora.lora_linear(B=<nan>)":
        _NAN,
    "llmlab.nn.lora.lora_linear(bias=<nan>)":
        _NAN,
    "llmlab.nn.lora.lora_linear(weight=<nan>)":
        _NAN,
    "llmlab.nn.lora.lora_linear(x=<nan>)":
        _NAN,
    "llmlab.nn.lora.merged_weight(A=<nan>)":
        _NAN,
    "llmlab.nn.lora.merged_weight(B=<nan>)":
        _NAN,
    "llmlab.nn.lora.merged_weight(weight=<nan>)":
        _NAN,
    "llmlab.nn.model.rope_rotary(positions=<negative>)":
        _ROPE,
    "llmlab.parallel.pipeline.lm_loss(logits=<nan>)":
        _NAN,
    "llmlab.parallel.tensor_parallel.RowParallelLinear.forward(x=<nan>)":
        _NAN,
    "llmlab.parallel.tensor_parallel.row_parallel_linear(bias=<nan>)":
        _NAN,
    "llmlab.parallel.tensor_parallel.row_parallel_linear(weight_part=<nan>)":
        _NAN,
    "llmlab.parallel.tensor_parallel.row_parallel_linear(x_part=<nan>)":
        _NAN,
    "llmlab.quant.linear.Int4WeightOnlyLinear.forward(x=<int_dtype>)":
        _HOT,
    "llmlab.quant.linear.Int4WeightOnlyLinear.forward(x=<nan>)":
        _NAN,
    "llmlab.quant.w4a8.W4A8Linear.forward(x=<int_dtype>)":
        _HOT,
    "llmlab.quant.w4a8.W4A8Linear.forward(x=<nan>)":
        _NAN,
    "llmlab.quant.linear.Int8WeightOnlyLinear.forward(x=<int_dtype>)":
        _HOT,
    "llmlab.quant.linear.Int8WeightOnlyLinear.forward(x=<nan>)":
        _NAN,
    "llmlab.tokenization.smollm2.chat_template(messages=<empty>)":
        "an empty conversation gives what the GGUF's own template gives (the generation prompt alone)",
    "llmlab.train.History(best_step=<float>)":
        _RECORD,
    "llmlab.train.History(best_step=<huge>)":
        _RECORD,
    "llmlab.train.History(best_step=<negative>)":
        _RECORD,
    "llmlab.train.History(best_step=<str>)":
        _RECORD,
    "llmlab.train.History(lr=<None>)":
        _RECORD,
    "llmlab.train.History(lr=<empty>)":
        _RECORD,
    "llmlab.train.History(lr=<nan_item>)":
        _RECORD,
    "llmlab.train.History(lr=<str>)":
        _RECORD,
    "llmlab.train.History(seconds=<-inf>)":
        _RECORD,
    "llmlab.train.History(seconds=<None>)":
        _RECORD,
    "llmlab.train.History(seconds=<inf>)":
        _RECORD,
    "llmlab.train.History(seconds=<nan>)":
        _RECORD,
    "llmlab.train.History(seconds=<negative>)":
        _RECORD,
    "llmlab.train.History(seconds=<str>)":
        _RECORD,
    "llmlab.train.History(seconds=<zero>)":
        _RECORD,
    "llmlab.train.History(stopped_early=<None>)":
        _RECORD,
    "llmlab.train.History(stopped_early=<str>)":
        _RECORD,
    "llmlab.train.History(train_loss=<None>)":
        _RECORD,
    "llmlab.train.History(train_loss=<empty>)":
        _RECORD,
    "llmlab.train.History(train_loss=<nan_item>)":
        _RECORD,
    "llmlab.train.History(train_loss=<str>)":
        _RECORD,
    "llmlab.train.History(val_loss=<None>)":
        _RECORD,
    "llmlab.train.History(val_loss=<empty>)":
        _RECORD,
    "llmlab.train.History(val_loss=<nan_item>)":
        _RECORD,
    "llmlab.train.History(val_loss=<str>)":
        _RECORD,
    "llmlab.train.History(val_steps=<None>)":
        _RECORD,
    "llmlab.train.History(val_steps=<empty>)":
        _RECORD,
    "llmlab.train.History(val_steps=<negative_item>)":
        _RECORD,
    "llmlab.train.History(val_steps=<str>)":
        _RECORD,
    "llmlab.train.TrainConfig(min_lr=<zero>)":
        'decay to 0 is a common schedule',
    "llmlab.train.TrainConfig(patience=<huge>)":
        'a patience longer than the run never stops it early: allowed',
    "llmlab.train.TrainConfig(warmup_steps=<zero>)":
        'no warm-up is allowed (lr_at starts at max_lr)',
    "llmlab.train.TrainConfig(weight_decay=<zero>)":
        'no weight decay is plain Adam: allowed',
    "llmlab.train.adamw_step(exp_avg=<nan>)":
        _NAN,
    "llmlab.train.adamw_step(exp_avg_sq=<nan>)":
        _NAN,
    "llmlab.train.adamw_step(grad=<nan>)":
        _NAN,
    "llmlab.train.adamw_step(lr=<zero>)":
        'lr 0 leaves the parameter unchanged: allowed (a frozen step)',
    "llmlab.train.adamw_step(param=<nan>)":
        _NAN,
    "llmlab.train.adamw_step(step=<huge>)":
        'a late step: the bias corrections tend to 1, well defined',
    "llmlab.train.adamw_step(weight_decay=<zero>)":
        'no weight decay is plain Adam: allowed',
    "llmlab.train.clip_grad_norm(parameters=<empty>)":
        'no gradient: the norm is 0 and nothing is scaled, as torch.nn.utils.clip_grad_norm_ does',
    "llmlab.train.dropout(x=<int_dtype>)":
        "the course's formula x * keep / (1 - p) is defined for integers too (it returns floats)",
    "llmlab.train.dropout(x=<nan>)":
        _NAN,
    "llmlab.train.lr_at(step=<huge>)":
        'a step past the end gets min_lr (documented)',
    "llmlab.train.lr_at(total_steps=<huge>)":
        'a long schedule: well defined',
    "llmlab.train.lr_at(warmup_steps=<zero>)":
        'no warm-up is allowed (documented: the first step then gets max_lr)',
    "llmlab.train.param_groups(weight_decay=<zero>)":
        'no weight decay is allowed',
    "llmlab.train.should_stop(patience=<huge>)":
        'a patience longer than the history never stops: False',
    "llmlab.train.should_stop(val_losses=<empty>)":
        'no evaluation yet: never stop (False)',
    "llmlab.validate.positive_int(value=<huge>)":
        'positive_int is for counts that allocate nothing; size is the capped one',
    "llmlab.validate.strings(value=<empty>)":
        'an empty list of strings is a list of strings',
    "llmlab.validate.tensor(x=<empty>)":
        'tensor checks only what it is told (ndim, dtype, finite): an empty tensor passes',
}

_COORD = "a position or size in the diagram's data units: any finite number is a place (off the canvas is the caller's choice)"
_LABEL = "an empty label draws nothing, as matplotlib does"
ACCEPTED.update({
    **{f"llmlab.diagrams.draw.{fn}({arg}=<{kind}>)": _COORD for fn, args in
       (("box", ("x", "y")), ("legend", ("x", "y"))) for arg in args
       for kind in ("float", "huge", "negative", "zero")},
    **{f"llmlab.diagrams.draw.{fn}({arg}=<{kind}>)": _COORD for fn, arg, kinds in
       (("box", "w", ("float", "huge")), ("box", "h", ("float", "huge")), ("canvas", "width", ("float",)),
        ("canvas", "height", ("float",)), ("arrow", "start", ("negative_item",)), ("arrow", "end", ("negative_item",)))
       for kind in kinds},
    "llmlab.diagrams.draw.box(text=<empty>)": _LABEL,
    "llmlab.diagrams.draw.arrow(text=<empty>)": _LABEL,
    "llmlab.diagrams.draw.canvas(title=<empty>)": _LABEL,
    "llmlab.diagrams.draw.legend(entries=<empty>)": "an empty key draws nothing",
    "llmlab.diagrams.draw.optional_title(title=<None>)": "None means the diagram's default title (documented)",
    "llmlab.inference.engine.Engine.generate(max_new_tokens=<zero>)": "0 new tokens is an empty answer (as generate)",
    "llmlab.inference.engine.Engine.speculative_generate(max_new_tokens=<zero>)":
        "0 new tokens is an empty answer (as generate)",
    **{f"llmlab.inference.engine.cached_attention({a}=<nan>)": _NAN for a in "qkv"},
})

# each tests/fuzz/accepted_<part>.py may hold an ACCEPTED dict of its own
import importlib as _importlib  # noqa: E402
import pkgutil as _pkgutil  # noqa: E402

import tests.fuzz as _fuzz  # noqa: E402

for _info in _pkgutil.iter_modules(_fuzz.__path__):
    if _info.name.startswith("accepted_"):
        ACCEPTED.update(_importlib.import_module(f"tests.fuzz.{_info.name}").ACCEPTED)
