"""Bad-looking values that are in fact fine: each such call must return normally.

Keyed like ``known.json`` (``module.function(argument=<kind>)``); the value says why, from the
function's docstring or the argument's meaning. Conservative: only what is clearly allowed; everything
else that is accepted today is listed in ``known.json`` as ``accepted``, to be fixed.
"""

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
    "llmlab.metrics.classification.roc_auc(pos_label=<zero>)": "0 is one of the classes in y_true",
    "llmlab.metrics.classification.roc_curve(pos_label=<zero>)": "0 is one of the classes in y_true",
    "llmlab.metrics.lm.strided_nll(ids=<list>)": "ids: a 1-D tensor or list (documented)",
    "llmlab.metrics.lm.strided_perplexity(ids=<list>)": "ids: a 1-D tensor or list (as strided_nll)",
    "llmlab.metrics.speed.measure_generation(warmup=<zero>)": "no warm-up run: warmup + repeats runs in all",
    "llmlab.metrics.speed.percentile(q=<zero>)": "0 <= q <= 100 (documented)",
    "llmlab.metrics.text.lcs_length(a=<empty>)": "the LCS with an empty sequence is 0",
    "llmlab.metrics.text.lcs_length(b=<empty>)": "the LCS with an empty sequence is 0",
    "llmlab.metrics.text.modified_precision(hyp=<empty>)": "total = len(hyp) - n + 1, or 0 (documented)",
    "llmlab.metrics.text.rouge_l(prediction=<empty>)": "either side empty gives 0 (documented)",
    "llmlab.metrics.text.rouge_l(target=<empty>)": "either side empty gives 0 (documented)",
    "llmlab.metrics.text.rouge_n(prediction=<empty>)": "a side with no n-grams gives 0 (documented)",
    "llmlab.metrics.text.rouge_n(target=<empty>)": "a side with no n-grams gives 0 (documented)",
    "llmlab.metrics.text.sentence_bleu(references=<str>)": "references: str | list[str] (documented)",
    "llmlab.metrics.text.tokenize_13a(line=<empty>)": "an empty text is a text: it has no tokens",
    "llmlab.metrics.text.tokenize_rouge(text=<empty>)": "an empty text is a text: it has no tokens",
    "llmlab.metrics.text.tokenize_zh(line=<empty>)": "an empty text is a text: it has no tokens",
    "llmlab.models.gguf.read_metadata(skip_prefix=<empty>)": "pass () to keep everything (documented)",
    "llmlab.models.smollm2.layer_from_gguf(i=<zero>)": "block 0 is the first block",
    "llmlab.ngram.NGramLM.generate(temperature=<zero>)": "temperature 0 is greedy (temperature_softmax's T = 0)",
    "llmlab.ngram.NGramLM.probs(context=<empty>)": "short contexts are padded with BOS (documented)",
    "llmlab.nn.attention.MultiHeadAttention.forward(mask=<extra_dim>)":
        "mask broadcastable to (B, H, T, S): fewer or more leading dims of size 1 still broadcast",
    "llmlab.nn.attention.MultiHeadAttention.forward(mask=<missing_dim>)":
        "mask broadcastable to (B, H, T, S): fewer or more leading dims of size 1 still broadcast",
    "llmlab.nn.attention.attention_scores(k=<extra_dim>)": "k (..., S, D): any number of leading dims",
    "llmlab.nn.attention.attention_scores(k=<missing_dim>)": "k (..., S, D): any number of leading dims",
    "llmlab.nn.attention.attention_scores(q=<extra_dim>)": "q (..., T, D): any number of leading dims",
    "llmlab.nn.attention.attention_scores(q=<missing_dim>)": "q (..., T, D): any number of leading dims",
    "llmlab.nn.attention.scaled_dot_product_attention(mask=<extra_dim>)":
        "mask broadcastable to (B, H, T, S): fewer or more leading dims of size 1 still broadcast",
    "llmlab.nn.attention.scaled_dot_product_attention(mask=<missing_dim>)":
        "mask broadcastable to (B, H, T, S): fewer or more leading dims of size 1 still broadcast",
    "llmlab.nn.attention.softmax(dim=<zero>)": "dim 0 is a valid dimension",
    "llmlab.nn.attention.softmax(x=<empty>)": "softmax along dim of a tensor of any shape",
    "llmlab.nn.attention.softmax(x=<extra_dim>)": "softmax along dim of a tensor of any shape",
    "llmlab.nn.attention.softmax(x=<missing_dim>)": "softmax along dim of a tensor of any shape",
    "llmlab.nn.kv_cache.KVCache.truncate(length=<zero>)": "length must be in [0, length filled] (documented)",
    "llmlab.nn.kv_cache.KVCache.update(layer=<zero>)": "layer 0 is the first layer",
    "llmlab.nn.kv_cache.SlidingWindowCache(sink=<zero>)":
        "no sink tokens: a plain sliding window (the tests use sink=0)",
    "llmlab.nn.kv_cache.SlidingWindowCache.for_model(sink=<zero>)":
        "no sink tokens: a plain sliding window (the tests use sink=0)",
    "llmlab.nn.kv_cache.write_kv(start=<zero>)": "slot 0 is the first slot",
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
    "llmlab.nn.layers.rotate_half(x=<missing_dim>)": "acts on the last dim only, any leading dims",
    "llmlab.nn.lora.LoRALinear.forward(x=<empty>)":
        "x (..., in): any number of leading dims, none of them required to be non-empty",
    "llmlab.nn.lora.LoRALinear.forward(x=<extra_dim>)":
        "x (..., in): any number of leading dims, none of them required to be non-empty",
    "llmlab.nn.lora.LoRALinear.forward(x=<missing_dim>)":
        "x (..., in): any number of leading dims, none of them required to be non-empty",
    "llmlab.nn.lora.lora_linear(x=<empty>)":
        "x (..., in): any number of leading dims, none of them required to be non-empty",
    "llmlab.nn.lora.lora_linear(x=<extra_dim>)":
        "x (..., in): any number of leading dims, none of them required to be non-empty",
    "llmlab.nn.lora.lora_linear(x=<missing_dim>)":
        "x (..., in): any number of leading dims, none of them required to be non-empty",
    "llmlab.nn.model.DecoderConfig(dropout=<zero>)": "dropout 0 is the default (no dropout)",
    "llmlab.nn.model.rope_rotary(positions=<extra_dim>)":
        "positions (T,) or (B, T): a batch of one row of positions is allowed",
    "llmlab.parallel.async_sgd.parameter_server(jitter=<zero>)": "jitter = 0: equal workers (documented)",
    "llmlab.parallel.data_parallel.shard_range(rank=<zero>)": "rank 0 of world_size 2 is a rank",
    "llmlab.parallel.speedup.amdahl(parallel_fraction=<zero>)": "a fraction: 0 means nothing parallelises (speed-up 1)",
    "llmlab.parallel.speedup.comm_model(latency=<zero>)": "latency 0 is the default",
    "llmlab.parallel.tensor_parallel.RowParallelLinear(rank=<zero>)": "rank 0 of world_size 2 is a rank",
    "llmlab.parallel.tensor_parallel.RowParallelLinear.forward(x=<empty>)":
        "x_r (..., in / N): any number of leading dims, none of them required to be non-empty",
    "llmlab.parallel.tensor_parallel.RowParallelLinear.forward(x=<extra_dim>)":
        "x_r (..., in / N): any number of leading dims, none of them required to be non-empty",
    "llmlab.parallel.tensor_parallel.RowParallelLinear.forward(x=<missing_dim>)":
        "x_r (..., in / N): any number of leading dims, none of them required to be non-empty",
    "llmlab.parallel.tensor_parallel.column_split(rank=<zero>)": "rank 0 of world_size 2 is a rank",
    "llmlab.parallel.tensor_parallel.row_parallel_linear(x_part=<empty>)":
        "x_part (..., in / N): any number of leading dims, none of them required to be non-empty",
    "llmlab.parallel.tensor_parallel.row_parallel_linear(x_part=<extra_dim>)":
        "x_part (..., in / N): any number of leading dims, none of them required to be non-empty",
    "llmlab.parallel.tensor_parallel.row_parallel_linear(x_part=<missing_dim>)":
        "x_part (..., in / N): any number of leading dims, none of them required to be non-empty",
    "llmlab.parallel.tensor_parallel.row_split(rank=<zero>)": "rank 0 of world_size 2 is a rank",
    "llmlab.parallel.tensor_parallel.shard_attention(rank=<zero>)": "rank 0 of world_size 2 is a rank",
    "llmlab.parallel.tensor_parallel.shard_mlp(rank=<zero>)": "rank 0 of world_size 2 is a rank",
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
    "llmlab.inference.speculative.ModelDraft.propose(temperature=<zero>)": "temperature 0 is greedy, as in speculative_generate",
    "llmlab.inference.speculative.expected_tokens_per_round(alpha=<zero>)":
        "an acceptance rate in [0, 1): 0 gives one token per round",
    "llmlab.inference.speculative.speculative_accept(v=<zero>)": "v is a uniform in [0, 1)",
    "llmlab.inference.speculative.speculative_generate(eos_id=<zero>)": "0 is a token id like any other",
    "llmlab.tokenization.bpe.ByteBPE(special_tokens=<empty>)": "no special tokens is the default",
    "llmlab.tokenization.bpe.ByteBPE.decode(ids=<empty>)": "no ids decode to the empty text",
    "llmlab.tokenization.bpe.ByteBPE.encode(text=<empty>)": "an empty text is a text: it has no tokens",
    "llmlab.tokenization.bpe.ByteBPE.train(special_tokens=<empty>)": "no special tokens is the default",
    "llmlab.tokenization.bpe.pair_count_change(into=<empty>)": "an empty Counter to add the change to",
    "llmlab.tokenization.bpe.pretokenize(text=<empty>)": "an empty text is a text: it has no tokens",
    "llmlab.tokenization.bpe.train_bpe(special_tokens=<empty>)": "no special tokens is the default",
    "llmlab.tokenization.bpe.train_bpe_naive(special_tokens=<empty>)": "no special tokens is the default",
    "llmlab.tokenization.chinese.backward_max_match(text=<empty>)": "an empty text is a text: it has no tokens",
    "llmlab.tokenization.chinese.bidirectional_max_match(text=<empty>)": "an empty text is a text: it has no tokens",
    "llmlab.tokenization.chinese.cut(text=<empty>)": "an empty text is a text: it has no tokens",
    "llmlab.tokenization.chinese.forward_max_match(text=<empty>)": "an empty text is a text: it has no tokens",
    "llmlab.tokenization.chinese.hmm_cut(text=<empty>)": "an empty text is a text: it has no tokens",
    "llmlab.tokenization.wordpiece.WordPiece.decode(ids=<empty>)": "no ids decode to the empty text",
    "llmlab.tokenization.wordpiece.WordPiece.encode(text=<empty>)": "an empty text is a text: it has no tokens",
    "llmlab.tokenization.wordpiece.basic_tokenize(text=<empty>)": "an empty text is a text: it has no tokens",
    "llmlab.tokenization.wordpiece.clean_text(text=<empty>)": "an empty text is a text: it has no tokens",
    "llmlab.tokenization.wordpiece.pad_cjk(text=<empty>)": "an empty text is a text: it has no tokens",
    "llmlab.tokenization.wordpiece.strip_accents(text=<empty>)": "an empty text is a text: it has no tokens",
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
    "llmlab.validate.divisor(minimum=<negative>)": "any int is a lower bound",
    "llmlab.validate.divisor(minimum=<zero>)": "any int is a lower bound",
    "llmlab.validate.integer(minimum=<negative>)": "any int is a lower bound",
    "llmlab.validate.integer(minimum=<zero>)": "any int is a lower bound",
    "llmlab.validate.positive_int(minimum=<zero>)": "a count may start at 0 (minimum is 1 unless told)",
    "llmlab.validate.probability(value=<zero>)": "0 is a probability, and allow_zero=True",
    "llmlab.validate.real(minimum=<negative>)": "any number is a lower bound",
    "llmlab.validate.real(value=<zero>)": "0 >= minimum 0.0",
    "llmlab.validate.size(minimum=<zero>)": "a count may start at 0 (minimum is 1 unless told)",
    "llmlab.validate.tensor(min_ndim=<zero>)": "at least 0 dimensions: any tensor",
    "llmlab.validate.token_budget(max_new_tokens=<zero>)": "max_new_tokens: an int >= 0 (documented)",
    "llmlab.evaluation.zero_shot.calibrate(content_free=<extra_dim>)": "content_free (K,) or (1, K)",
}
