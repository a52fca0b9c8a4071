"""Decode speed of SmolLM2-135M, batch 1, greedy: llmlab against transformers and llama.cpp, beside the roofline.

    python benchmarks/decode.py                       # CPU, all threads, 128 new tokens (a few minutes on 2 cores)
    python benchmarks/decode.py --new-tokens 16 --repeats 1 --no-ppl      # a quick smoke run
    python benchmarks/decode.py --device cuda         # GPU rows (fp32/bf16, torch.compile)

The same fp32 weights (SmolLM2's GGUF, dequantised) are loaded once into llmlab
(``load_smollm2``) and once into ``transformers`` (``from_pretrained(dir, gguf_file=...)``), and every
row decodes the same prompt (the chat template around one question) for ``--new-tokens`` tokens:

* transformers generate: ``model.generate`` with its cache, ``do_sample=False``, EOS disabled so it
  never stops early; tokens are streamed out of it (a ``BaseStreamer`` and a thread) so TTFT is seen.
* transformers fwd loop: the model's forward in a hand-written loop with ``past_key_values`` and
  argmax (no ``generate`` machinery: the fastest transformers path).
* llmlab Decoder+KVCache: ``llmlab.inference.generation.stream`` on the course's ``Decoder`` (what
  ``generate`` does).
* llmlab Fast fp32: the same loop on ``FastDecoder`` (fused qkv / gate-up matmuls, fewer ops).
* llmlab Fast int4: ``FastDecoder`` with ``Int4WeightOnlyLinear`` (groups of 32, = the GGUF's Q4_1
  grid) in the blocks and ``Int8WeightOnlyLinear`` for the tied head; torch's packed CPU kernels
  with bf16 activations.
* llama.cpp Q4_1: ``llama_cpp`` (llama-cpp-python) on the original GGUF file (Q4_1 blocks, Q8_0
  embedding/head), fed the same token ids, greedy; skipped with a note when it is not importable.
* llmlab compiled fp32 / int4: FastDecoders through ``CompiledDecoder``
  (``llmlab.inference.compiled_step``): the decode step as one graph with static shapes, compiled
  ahead of time by AOTInductor into a package kept in ``--package-dir`` (built on the first run:
  about a minute per model on 2 cores, printed as cold; loaded in seconds afterwards,
  printed as warm). The fp32 one stores its weights (K, N). The int4 one computes as llama.cpp
  does: ``W4A8Linear`` (``llmlab.quant.w4a8``) in the blocks, Q4_1 weights times activations
  quantized to int8 per 16 inputs, integer dot products (AVX512-VNNI or AVX2) in a small C++ kernel
  built on first use; without a compiler, or on a CPU without AVX2, it is the Fast int4 model
  compiled. On CUDA the step goes through ``torch.compile(fullgraph=True, mode="reduce-overhead")``
  (CUDA graphs) instead. ``--no-compile`` skips these rows.
* ``--device cuda``: transformers, Decoder and FastDecoder in fp32 and bf16, and the compiled
  fp32 and bf16 steps, all on the GPU (the int4 kernels and llama.cpp are CPU rows); the perplexity then
  compares bf16 with fp32.

Figures per row (``llmlab.metrics.speed.measure_generation``, ``speed_table``): TTFT (prefill +
first token), median and p90 ms per decode step, tokens/s over the whole run. Each row first runs
``--warmup`` untimed times; then ``--repeats`` rounds run every row once each, so that load from other
processes on a shared machine hits all rows alike, and each row reports its best round. Beside
them, two ceilings:

* matmul roofline: the model's weight matmuls alone, batch 1, timed with the real weights in each
  row's layout and kernels (fp32 ``F.linear``, 7 per layer + head, as transformers and Decoder;
  fp32 fused, 4 per layer + head, as FastDecoder; ``_weight_int4pack_mm_for_cpu`` + int8 head with
  bf16 activations, as Fast int4 and, by bytes, llama.cpp's Q4_1 + Q8_0; ``w4a8_mm`` + int8 head,
  as compiled int4). Decode tok/s (1 / median step) is printed as a % of it: a roofline measured on the real weights, not computed from peak figures.
* bandwidth bound: ``measure_bandwidth`` (a large copy) over ``decode_bytes_per_token`` (weights
  + the KV cache at the mean context), i.e. what streaming the bytes alone would allow.

Then: greedy tokens of every llmlab row against transformers' (the fp32 rows must be identical),
ratios against the named peers with their goals (compiled int4 / llama.cpp Q4_1 >= 1.3 per decode
step; compiled fp32 / transformers fwd loop >= 1.3; each compiled row >= 85% of its matmul roofline),
a batch table (``--batch 1 4 16``: tok/s = B / median step for B copies of the prompt, transformers'
forward loop beside the eager and compiled llmlab rows), and the perplexity of the int4 models
(Fast int4, and the int4 x int8 arithmetic of compiled int4, goal within 1%) against the fp32 one on
``--ppl-tokens`` tokens of the pydoc validation split (``chunked_nll``; ``--no-ppl`` skips it).
SmolLM2's blocks already are Q4_1, so int4 with groups of 32 re-quantises them almost losslessly:
what the int4 perplexities show is the cost of bf16 (or int8) activations, of fp16/bf16 scales and
of the int8 head.

Timings on a shared machine are noisy: compare rows of one run, not runs of different days.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import math
import os
import queue
import subprocess
import sys
import threading
import time

import torch
import torch.nn.functional as F

from llmlab.data import pydoc_text
from llmlab.inference.compiled_step import CompiledDecoder, compiler_available
from llmlab.inference.fast_decoder import FastDecoder, TransposedLinear
from llmlab.inference.generation import stream, stream_batch
from llmlab.inference.long_context import chunked_nll
from llmlab.metrics.speed import (bandwidth_bound, decode_bytes_per_token, measure_bandwidth,
                                  measure_generation, speed_table)
from llmlab.models import load_smollm2, smollm2_gguf_path
from llmlab.quant.linear import Int4WeightOnlyLinear, Int8WeightOnlyLinear
from llmlab.quant.w4a8 import W4A8Linear, kernel_isa
from llmlab.tokenization.smollm2 import chat_template, load_smollm2_tokenizer

QUESTION = "Explain, step by step, how a hash table works and why lookups are fast on average."


def log(msg: str) -> None:
    print(msg, flush=True)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def first_difference(ref: list[int], other: list[int]) -> str:
    if ref == other:
        return "identical"
    i = next((k for k, (x, y) in enumerate(zip(ref, other)) if x != y), min(len(ref), len(other)))
    return f"differ from token {i} of {len(ref)}"


# --------------------------------------------------------------------------------------- rooflines


def timed(fn, repeats: int, device: torch.device, blocks: int = 5) -> float:
    """Seconds per call of ``fn``: the best of ``blocks`` means over ``repeats`` calls each, after 3
    untimed calls (the best block, as a burst of load from another process slows only some)."""
    for _ in range(3):
        fn()
    best = math.inf
    for _ in range(blocks):
        sync(device)
        t = time.perf_counter()
        for _ in range(repeats):
            fn()
        sync(device)
        best = min(best, (time.perf_counter() - t) / repeats)
    return best


def dense_matmuls(weights: list[torch.Tensor]):
    """(one call = x @ W^T for every weight, bytes read): the fp32/bf16 roofline of a layout."""
    xs = {w.shape[1]: torch.randn(1, w.shape[1], dtype=w.dtype, device=w.device) for w in weights}
    return (lambda: [F.linear(xs[w.shape[1]], w) for w in weights]), sum(w.numel() * w.element_size() for w in weights)


def kmajor_matmuls(fast: FastDecoder):
    """(one call = x @ W for every (K, N) weight of a FastDecoder made with TransposedLinear, bytes read)."""
    weights = [m.weight_t for m in fast_linears(fast)]
    xs = {w.shape[0]: torch.randn(1, w.shape[0], dtype=w.dtype, device=w.device) for w in weights}
    return (lambda: [xs[w.shape[0]] @ w for w in weights]), sum(w.numel() * w.element_size() for w in weights)


def decoder_weights(model) -> list[torch.Tensor]:
    """The weight matrices a Decoder (and transformers, same layout) multiplies by per token."""
    ws = []
    for b in model.layers:
        a, f = b.attention, b.feed_forward
        ws += [a.wq.weight, a.wk.weight, a.wv.weight, a.wo.weight, f.w1.weight, f.w3.weight, f.w2.weight]
    return [w.detach() for w in ws] + [model.output.weight.detach()]


def fast_linears(fast: FastDecoder) -> list[torch.nn.Module]:
    return [m for b in fast.layers for m in (b.wqkv, b.wo, b.w13, b.w2)] + [fast.output]


def quantized_matmuls(fast: FastDecoder):
    """One call = every packed int4/int8 kernel of an int4 FastDecoder on a (1, K) activation (bf16;
    float32 for the int4 x int8 kernel, which quantizes it itself)."""
    calls, nbytes = [], 0
    for m in fast_linears(fast):
        k = m.in_features if isinstance(m, (Int4WeightOnlyLinear, W4A8Linear)) else m.q.shape[1]
        x = torch.randn(1, k, dtype=torch.bfloat16)
        if isinstance(m, W4A8Linear):
            calls.append(lambda x=x.float(), m=m: torch.ops.llmlab.w4a8_mm(x, m.codes, m.scales))
            nbytes += m.weight_nbytes
        elif isinstance(m, Int4WeightOnlyLinear):
            if m.packed is None:
                raise RuntimeError("torch has no _weight_int4pack_mm_for_cpu kernel")
            calls.append(lambda x=x, m=m: torch.ops.aten._weight_int4pack_mm_for_cpu(x, m.packed, m.group_size,
                                                                                     m.scale_zero))
            nbytes += m.packed.numel() * m.packed.element_size() + m.scale_zero.numel() * m.scale_zero.element_size()
        elif isinstance(m, Int8WeightOnlyLinear):
            s = m.scale.to(torch.bfloat16)
            calls.append(lambda x=x, m=m, s=s: torch.ops.aten._weight_int8pack_mm(x, m.q, s))
            nbytes += m.q.numel() + s.numel() * 2
        else:
            w = m.weight.detach()
            calls.append(lambda x=x.to(w.dtype), w=w: F.linear(x, w))
            nbytes += w.numel() * w.element_size()
    return (lambda: [c() for c in calls]), nbytes


# ------------------------------------------------------------------------------------------- peers


def load_transformers(device: torch.device):
    import transformers

    path = smollm2_gguf_path()
    # ``dtype=`` is transformers 5's name for ``torch_dtype=`` (deprecated, with a warning); its
    # GGUF conversion draws a progress bar on stderr, kept out of the benchmark's output
    with contextlib.redirect_stderr(io.StringIO()):
        model = transformers.AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name,
                                                                  dtype=torch.float32)
    return model.to(device).eval()


def hf_generate_stream(hf, ids: list[int], n: int, device: torch.device):
    """transformers' ``generate`` (greedy, its cache, no early stop), its tokens yielded as they come."""
    from transformers import GenerationConfig
    from transformers.generation.streamers import BaseStreamer

    class Ids(BaseStreamer):
        def __init__(self):
            self.q, self.prompt_seen = queue.Queue(), False

        def put(self, value):
            if not self.prompt_seen:  # generate() first puts the prompt
                self.prompt_seen = True
                return
            self.q.put(int(value.reshape(-1)[0]))

        def end(self):
            self.q.put(None)

    # EOS disabled: every row decodes exactly n tokens by plain argmax (min_new_tokens would instead
    # suppress EOS's logit, and the tokens would part from llmlab's at the first EOS)
    config = GenerationConfig(max_new_tokens=n, min_new_tokens=n, do_sample=False, eos_token_id=None,
                              pad_token_id=0, bos_token_id=None)
    x = torch.tensor([ids], device=device)

    def run():
        streamer, failure = Ids(), []

        def work():
            try:
                with torch.inference_mode():
                    hf.generate(x, attention_mask=torch.ones_like(x), generation_config=config, streamer=streamer)
            except BaseException as e:  # surfaced in the consumer
                failure.append(e)
                streamer.q.put(None)

        thread = threading.Thread(target=work)
        thread.start()
        while (t := streamer.q.get()) is not None:
            yield t
        thread.join()
        if failure:
            raise failure[0]

    return run


def hf_loop_batch(hf, ids: list[int], B: int, n: int, device: torch.device):
    """transformers' forward in a plain loop on B copies of the prompt: prefill, then one token per row per step
    with past_key_values; yields the (B, 1) next tokens."""
    x = torch.tensor([ids] * B, device=device)
    with torch.inference_mode():
        out = hf(input_ids=x, use_cache=True, logits_to_keep=1)
        for i in range(n):
            nxt = out.logits[:, -1].argmax(-1, keepdim=True)
            yield nxt
            if i + 1 < n:
                out = hf(input_ids=nxt, past_key_values=out.past_key_values, use_cache=True)


def hf_loop_stream(hf, ids: list[int], n: int, device: torch.device):
    """transformers' forward in a plain loop: prefill, then one token per step with past_key_values."""
    return lambda: (int(t) for t in hf_loop_batch(hf, ids, 1, n, device))


def llama_cpp_problem(threads: int) -> str | None:
    """Why llama.cpp cannot run here, or None. Besides the import, a short prefill and one decode
    step run in a child process first: a llama.cpp build can crash the process (seen here: a
    native build's AMX kernel segfaults in ``ggml_backend_amx_mul_mat``), which would end the
    whole benchmark."""
    if importlib.util.find_spec("llama_cpp") is None:
        return "`llama_cpp` is not importable (pip install llama-cpp-python builds it from source)"
    probe = ("import sys\nfrom llama_cpp import Llama\n"
             "llm = Llama(model_path=sys.argv[1], n_ctx=64, n_threads=int(sys.argv[2]), verbose=False)\n"
             "llm.eval(list(range(100, 132)))\nllm.eval([7])\n")
    try:
        done = subprocess.run([sys.executable, "-c", probe, str(smollm2_gguf_path()), str(threads)],
                              capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        return "a test prefill in a child process did not finish in 300 s"
    if done.returncode < 0:  # killed by a signal, e.g. SIGSEGV
        import signal

        return f"a test prefill crashed a child process ({signal.Signals(-done.returncode).name})"
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no message"])[-1][:120]
        return f"a test prefill in a child process failed (exit status {done.returncode}: {tail})"
    return None


def llama_cpp_stream(ids: list[int], n: int, threads: int):
    """llama.cpp on the original Q4_1 GGUF, greedy, through llama-cpp-python."""
    from llama_cpp import Llama

    llm = Llama(model_path=str(smollm2_gguf_path()), n_ctx=len(ids) + n + 16, n_threads=threads,
                n_threads_batch=threads, n_batch=512, verbose=False)

    def run():
        llm.reset()  # forget the previous run: no prefix-cache hit on the prompt
        for i, t in enumerate(llm.generate(ids, top_k=1, top_p=1.0, min_p=0.0, temp=0.0, repeat_penalty=1.0)):
            yield int(t)
            if i + 1 == n:
                return

    return run


# ------------------------------------------------------------------------------------------ batches


def median_step(steps, device: torch.device) -> float:
    """Seconds of the median decode step of ``steps`` (an iterator yielding once per step; the first
    yield, after the prefill, is not a decode step)."""
    times, prev = [], None
    for _ in steps:
        sync(device)
        now = time.perf_counter()
        if prev is not None:
            times.append(now - prev)
        prev = now
    times.sort()
    return times[len(times) // 2]


def batch_table(args, ids: list[int], device: torch.device, hf, fast, fast_int4, compiled: dict) -> None:
    """Decode throughput (B / median step) at each batch size of ``--batch``, B copies of the prompt."""
    m = max(2, args.batch_tokens)
    rows = {"transformers fwd loop": lambda B: hf_loop_batch(hf, ids, B, m, device),
            "llmlab Fast fp32": lambda B: stream_batch(fast, [ids] * B, m)}
    if fast_int4 is not None:
        rows["llmlab Fast int4"] = lambda B: stream_batch(fast_int4, [ids] * B, m)
    for name, c in compiled.items():
        rows[name] = lambda B, c=c: stream_batch(c, [ids] * B, m)
    log("")
    log(f"batch decode, tok/s = B / median step ({m} tokens per sequence, B copies of the prompt, best of "
        f"{args.repeats} rounds; llama.cpp: not measured, llama-cpp-python's Llama decodes one sequence):")
    log(f"{'':24}" + "".join(f"{f'B={B}':>10}" for B in args.batch))
    best = {name: {} for name in rows}
    for _ in range(args.repeats):
        for B in args.batch:
            for name, make in rows.items():
                step = median_step(make(B), device)
                best[name][B] = max(best[name].get(B, 0.0), B / step)
    for name in rows:
        log(f"{name[:24]:24}" + "".join(f"{best[name][B]:10.1f}" for B in args.batch))
    peer = best["transformers fwd loop"]
    for name in ("llmlab compiled fp32", "llmlab compiled int4"):
        if name in best:
            log(f"  {name} / transformers fwd loop: " + ", ".join(f"B={B} {best[name][B] / peer[B]:.2f}x"
                                                                   for B in args.batch))


# -------------------------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--new-tokens", type=int, default=128, help="tokens decoded per run (default 128)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="torch and llama.cpp threads (default: all CPUs)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs per row (default 1)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed rounds over all rows; each row's best round is reported (default 3)")
    parser.add_argument("--roofline-repeats", type=int, default=10,
                        help="matmul-roofline calls per timed block; the best of 5 blocks is kept (default 10)")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda[:N]")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True,
                        help="also time the compiled decode step (CompiledDecoder; default on)")
    parser.add_argument("--package-dir", default=None,
                        help="where the ahead-of-time compiled steps are kept (default: llmlab's cache, "
                             "~/.cache/llmlab/compiled); a new folder measures a cold compile")
    parser.add_argument("--batch", type=int, nargs="*", default=[1, 4, 16],
                        help="batch sizes of the batch-decode table (default 1 4 16; none: skip it)")
    parser.add_argument("--batch-tokens", type=int, default=32, help="tokens per sequence in the batch table")
    parser.add_argument("--no-ppl", action="store_true", help="skip the int4-vs-fp32 perplexity")
    parser.add_argument("--ppl-tokens", type=int, default=1024, help="pydoc validation tokens scored (default 1024)")
    parser.add_argument("--no-llama-cpp", action="store_true", help="skip llama.cpp even when it is importable")
    args = parser.parse_args()
    if args.new_tokens < 2 or args.repeats < 1 or args.warmup < 0 or args.threads < 1:
        parser.error("need --new-tokens >= 2, --repeats >= 1, --warmup >= 0, --threads >= 1")
    if any(not 1 <= B <= 64 for B in args.batch):
        parser.error("--batch sizes must be in 1 .. 64 (the compiled step is built for batches up to 64)")
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: CUDA is not available in this torch build / on this machine")
    if device.type not in ("cpu", "cuda"):
        parser.error(f"--device must be cpu or cuda, got {args.device}")
    cuda = device.type == "cuda"
    compile_too = args.compile
    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    n = args.new_tokens

    where = torch.cuda.get_device_name(device) if cuda else f"CPU, {args.threads} of {os.cpu_count()} threads"
    log(f"torch {torch.__version__}, {where}; {n} new tokens, greedy, batch 1; "
        f"{args.warmup} warm-up run(s) per row, then {args.repeats} timed round(s) over all rows")

    tok = load_smollm2_tokenizer()
    ids = tok.encode(chat_template([{"role": "user", "content": QUESTION}]))
    log(f"prompt: {len(ids)} tokens (chat template around {QUESTION!r})")

    # ----------------------------------------------------------------------------------- models
    t = time.perf_counter()
    decoder = load_smollm2(device=device)
    log(f"loaded llmlab Decoder fp32 in {time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    hf = load_transformers(device)
    log(f"loaded transformers fp32 (GGUF) in {time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    fast = FastDecoder(decoder)
    log(f"built FastDecoder fp32 in {time.perf_counter() - t:.1f} s")
    fast_int4 = fast_w4a8 = decoder_bf16 = fast_bf16 = fast_kmajor = None
    if cuda:
        decoder_bf16 = load_smollm2(device=device, dtype=torch.bfloat16)
        fast_bf16 = FastDecoder(decoder_bf16)
        log("loaded llmlab Decoder bf16 and its FastDecoder (int4 rows are CPU-only: the packed kernels are)")
    else:
        t = time.perf_counter()
        fast_int4 = FastDecoder(decoder, Int4WeightOnlyLinear.from_float, Int8WeightOnlyLinear.from_float)
        log(f"built FastDecoder int4 (blocks int4 g32, head int8) in {time.perf_counter() - t:.1f} s")
        if compile_too:  # the compiled fp32 row's layout: weights stored (K, N), read faster at batch 1 here
            fast_kmajor = FastDecoder(decoder, TransposedLinear.from_float)
            t = time.perf_counter()
            isa = kernel_isa()  # the compiled int4 row's arithmetic: int4 x int8 dot products
            if isa in ("avx512-vnni", "avx2"):
                fast_w4a8 = FastDecoder(decoder, W4A8Linear.from_float, Int8WeightOnlyLinear.from_float)
                log(f"built FastDecoder int4 x int8 (blocks W4A8 g32, head int8; kernel: {isa}) in "
                    f"{time.perf_counter() - t:.1f} s")
            else:
                log("int4 x int8 kernel (llmlab/quant/w4a8.cpp): " + ("no AVX2 on this CPU" if isa else
                    "not built here (no C++ compiler or ninja)") + ": the compiled int4 row uses torch's int4 kernel")

    # -------------------------------------------------------------------------------- rooflines
    log("timing the weight matmuls alone (roofline) and the memory bandwidth ...")
    cfg = decoder.cfg
    roofs: dict[str, tuple[float, int]] = {}  # name -> (seconds per token, weight bytes)
    layouts = {"fp32, 7 matmuls/layer": dense_matmuls(decoder_weights(decoder)),
               "fp32 fused, 4/layer": dense_matmuls([m.weight.detach() for m in fast_linears(fast)])}
    if cuda:
        layouts["bf16, 7 matmuls/layer"] = dense_matmuls(decoder_weights(decoder_bf16))
        layouts["bf16 fused, 4/layer"] = dense_matmuls([m.weight.detach() for m in fast_linears(fast_bf16)])
    if fast_kmajor is not None:
        layouts["fp32 fused K-major, 4/l"] = kmajor_matmuls(fast_kmajor)
    for name, (fn, nbytes) in layouts.items():
        roofs[name] = (timed(fn, args.roofline_repeats, device), nbytes)
    for roof, model in (("int4 g32 + int8 head", fast_int4), ("W4A8 g32 + int8 head", fast_w4a8)):
        if model is None:
            continue
        try:
            fn, nbytes = quantized_matmuls(model)
            roofs[roof] = (timed(fn, args.roofline_repeats, device), nbytes)
        except (RuntimeError, AttributeError) as e:  # kernel missing in this torch build
            log(f"{roof} roofline unavailable: {str(e).splitlines()[0][:100]}")
    bandwidth = measure_bandwidth(n_bytes=(1 << 30) if cuda else 256 * 2**20, device=device)
    context = len(ids) + n // 2  # mean context length while decoding
    kv_mb = (decode_bytes_per_token(1, cfg.n_layers, cfg.n_kv_heads, cfg.head_dim, context) - 1) / 1e6
    log(f"memory bandwidth (copy): {bandwidth / 1e9:.1f} GB/s; KV cache read per token at the mean context of "
        f"{context}: {kv_mb:.1f} MB (fp32)")
    log(f"{'matmul roofline':<24} {'MB':>6} {'ms/token':>9} {'tok/s':>7} {'GB/s':>6} {'bandwidth bound tok/s':>22}")
    bounds = {}
    for name, (dt, nbytes) in roofs.items():
        kv_bytes = 2 if name.startswith("bf16") else 4
        bound = bandwidth_bound(decode_bytes_per_token(nbytes, cfg.n_layers, cfg.n_kv_heads, cfg.head_dim, context,
                                                       kv_bytes), bandwidth)
        bounds[name] = bound
        log(f"{name:<24} {nbytes / 1e6:6.0f} {dt * 1e3:9.1f} {1 / dt:7.1f} {nbytes / dt / 1e9:6.1f} {bound:22.1f}")

    # ------------------------------------------------------------------------------------- rows
    # name -> (token iterator factory, roofline it is compared with)
    rows = {"transformers generate": (hf_generate_stream(hf, ids, n, device), "fp32, 7 matmuls/layer"),
            "transformers fwd loop": (hf_loop_stream(hf, ids, n, device), "fp32, 7 matmuls/layer"),
            "llmlab Decoder+KVCache": (lambda: stream(decoder, ids, n), "fp32, 7 matmuls/layer")}
    if cuda:
        rows["llmlab Decoder bf16"] = (lambda: stream(decoder_bf16, ids, n), "bf16, 7 matmuls/layer")
    rows["llmlab Fast fp32"] = (lambda: stream(fast, ids, n), "fp32 fused, 4/layer")
    if cuda:
        rows["llmlab Fast bf16"] = (lambda: stream(fast_bf16, ids, n), "bf16 fused, 4/layer")
    if fast_int4 is not None:
        rows["llmlab Fast int4"] = (lambda: stream(fast_int4, ids, n), "int4 g32 + int8 head")
    compiled = {}  # row name -> CompiledDecoder
    if compile_too:
        problem = compiler_available()
        if problem:
            log(f"compiled rows: skipped, {problem}")
        else:
            variants = [("fp32", fast_kmajor, "fp32 fused K-major, 4/l") if fast_kmajor is not None
                        else ("fp32", fast, "fp32 fused, 4/layer")]
            if fast_w4a8 is not None:
                variants.append(("int4", fast_w4a8, "W4A8 g32 + int8 head"))
            elif fast_int4 is not None:
                variants.append(("int4", fast_int4, "int4 g32 + int8 head"))
            variants += [("bf16", fast_bf16, "bf16 fused, 4/layer")] if fast_bf16 is not None else []
            for kind, model, roof in variants:
                c = CompiledDecoder(model, package_dir=args.package_dir, verbose=False)
                t = time.perf_counter()
                try:
                    if c.mode == "aot":
                        path = c.package_path()
                        cold = not path.exists()
                        log(f"compiled {kind}: " + ("compiling ahead of time, max-autotune (1-2 minutes) ..."
                                                    if cold else f"loading {path.name} ..."))
                        c.compiled_step()
                        log(f"  {'built' if cold else 'loaded'} in {time.perf_counter() - t:.1f} s "
                            f"({'cold' if cold else 'warm'}: {path})")
                    else:  # torch.compile compiles at the first step: timed in the warm-up
                        c.compiled_step()
                except Exception as e:  # noqa: BLE001 (a compiler failure is reported, not fatal)
                    log(f"  compiled {kind} failed, skipped: {type(e).__name__}: {str(e).splitlines()[0][:120]}")
                    continue
                name = f"llmlab compiled {kind}"
                compiled[name] = c
                rows[name] = ((lambda c=c: stream(c, ids, n)), roof)
    if cuda:
        log("llama.cpp: skipped on --device cuda (the CPU peer; run without --device for it)")
    elif args.no_llama_cpp:
        log("llama.cpp: skipped (--no-llama-cpp)")
    else:
        problem = llama_cpp_problem(args.threads)
        if problem:
            log(f"llama.cpp: skipped, {problem}")
        else:
            rows["llama.cpp Q4_1"] = (llama_cpp_stream(ids, n, args.threads), "int4 g32 + int8 head")

    # Rounds: every row runs once per round, so a burst of load from another process hits all rows
    # alike rather than one row's repeats; each row's figures are from its best round (as the other
    # benchmark scripts take the best time). The warm-up runs come before the first round.
    tokens: dict[str, list[int]] = {}
    runs: dict[str, list] = {name: [] for name in rows}

    def recording(name):
        def run():
            out = tokens[name] = []
            for t in rows[name][0]():
                out.append(int(t))
                yield t
        return run

    for name in list(rows):
        compiled_row = "compiled" in name
        warmup = max(1, args.warmup) if compiled_row else args.warmup  # compiling happens in the warm-up
        if warmup == 0:
            continue
        log(f"warming up {name} ..." + (" (compiling: minutes)" if compiled_row else ""))
        t = time.perf_counter()
        try:
            for _ in range(warmup):
                for _ in recording(name)():
                    pass
        except Exception as e:  # noqa: BLE001 (a compile failure shows up at the first call)
            if not compiled_row:
                raise
            log(f"  {name} failed, skipped: {type(e).__name__}: {str(e).splitlines()[0][:120]}")
            del rows[name], runs[name]
            tokens.pop(name, None)
            continue
        if compiled_row:
            log(f"  first run {time.perf_counter() - t:.1f} s" + (" (torch.compile, fullgraph=True)"
                                                                   if compiled[name].mode == "jit" else ""))
    for k in range(args.repeats):
        log(f"round {k + 1} of {args.repeats}:")
        for name in rows:
            r = measure_generation(recording(name), warmup=0, repeats=1, device=device)
            runs[name].append(r)
            log(f"  {name:<26} {r.tokens_per_s:6.1f} tok/s, {r.latency_median_s * 1e3:6.1f} ms/token, "
                f"TTFT {r.ttft_s * 1e3:5.0f} ms")
    reports = {name: max(rs, key=lambda r: r.tokens_per_s) for name, rs in runs.items()}

    # ----------------------------------------------------------------------------------- tables
    log("")
    log(speed_table(reports))
    log(f"(each row's best of {args.repeats} rounds; ms/token and p90: over the decode steps of that run; tok/s = "
        "tokens / whole run, prefill included; peak MiB: " + ("torch.cuda.max_memory_allocated)" if cuda else
                                                              "the process's peak RSS so far)"))
    log("")
    log(f"{'':24} {'decode tok/s':>12} {'matmul roofline':>24} {'tok/s':>7} {'% roof':>7} {'bw bound':>9} {'% bw':>6}")
    for name, r in reports.items():
        roof = rows[name][1]
        if roof not in roofs:
            continue
        step = 1 / r.latency_median_s
        ceiling = 1 / roofs[roof][0]
        log(f"{name[:24]:24} {step:12.1f} {roof:>24} {ceiling:7.1f} {100 * step / ceiling:6.0f}% "
            f"{bounds[roof]:9.1f} {100 * step / bounds[roof]:5.0f}%")
    log("(decode tok/s = 1 / median step; llama.cpp's own kernels are compared with torch's int4 + int8 ones)")
    for name in ("llmlab compiled fp32", "llmlab compiled int4"):
        if name in reports and rows[name][1] in roofs:
            share = roofs[rows[name][1]][0] / reports[name].latency_median_s
            verdict = "met" if share >= 0.85 else "NOT met"
            log(f"  {name}: {100 * share:.0f}% of its matmul roofline ({rows[name][1]}), goal >= 85%: {verdict}")

    log("")
    ref = tokens["transformers generate"]
    log(f"greedy tokens vs transformers generate ({len(ref)} tokens):")
    for name, toks in tokens.items():
        if name != "transformers generate":
            expect = "fp32, must be identical" if ("fp32" in name or "Decoder+" in name or "transformers" in name) \
                else "different arithmetic, may part"
            log(f"  {name:<26} {first_difference(ref, toks):<28} ({expect})")
    log(f"  text: {tok.decode(ref)[:160]!r}...")

    log("")
    hf_best = max((reports[k] for k in ("transformers generate", "transformers fwd loop")),
                  key=lambda r: r.tokens_per_s)

    def ratio(a: str, b, goal: float | None) -> None:
        ra = reports.get(a)
        rb = reports.get(b) if isinstance(b, str) else b
        if ra is None or rb is None:
            return
        name_b = b if isinstance(b, str) else "best transformers"
        tps, step = ra.tokens_per_s / rb.tokens_per_s, rb.latency_median_s / ra.latency_median_s
        verdict = "" if goal is None else (f"  goal >= {goal}: {'met' if tps >= goal else 'NOT met'} (tok/s), "
                                           f"{'met' if step >= goal else 'NOT met'} (per step)")
        log(f"  {a} / {name_b}: {tps:.2f}x tok/s, {step:.2f}x per decode step{verdict}")

    log("ratios (speed of the first over the second):")
    ratio("llmlab compiled int4", "llama.cpp Q4_1", 1.3)
    ratio("llmlab compiled fp32", "transformers fwd loop", 1.3)
    ratio("llmlab compiled fp32", "llmlab Fast fp32", None)
    ratio("llmlab compiled int4", "llmlab Fast int4", None)
    ratio("llmlab Fast fp32", "transformers generate", None)  # the eager rows: the readable reference, no goal
    ratio("llmlab Fast fp32", hf_best, None)
    ratio("llmlab Decoder+KVCache", "transformers generate", None)
    ratio("llmlab Fast fp32", "llmlab Decoder+KVCache", None)
    ratio("llmlab Fast int4", "llmlab Fast fp32", None)
    ratio("llmlab Fast int4", "llama.cpp Q4_1", None)
    if "llama.cpp Q4_1" not in reports and not cuda:
        log("  llmlab Fast int4 / llama.cpp Q4_1: not measured (llama.cpp did not run)")
    ratio("llmlab Fast bf16", "llmlab Fast fp32", None)

    # ---------------------------------------------------------------------------------- batches
    if args.batch:
        batch_table(args, ids, device, hf, fast, fast_int4, compiled)

    # ------------------------------------------------------------------------------- perplexity
    if not args.no_ppl:
        log("")
        text_ids = tok.encode(pydoc_text("val"))[:args.ppl_tokens + 1]
        log(f"perplexity on the first {len(text_ids) - 1} tokens of the pydoc validation split "
            "(chunked_nll, chunks of 256):")
        w4a8_name = "int4 x int8 (compiled int4's arithmetic)"
        low = {"llmlab Fast int4": fast_int4, w4a8_name: fast_w4a8, "llmlab Fast bf16": fast_bf16}
        compiled_int4 = w4a8_name if fast_w4a8 is not None else "llmlab Fast int4"  # the model the goal is on
        ppl = {}
        for name, model in [("llmlab Fast fp32", fast)] + [(k, v) for k, v in low.items() if v is not None]:
            t = time.perf_counter()
            ppl[name] = math.exp(float(chunked_nll(model, text_ids, chunk=256).mean()))
            log(f"  {name:<42} {ppl[name]:8.3f}  ({time.perf_counter() - t:.1f} s)")
        for name in ppl:
            if name != "llmlab Fast fp32":
                rel = ppl[name] / ppl["llmlab Fast fp32"]
                goal = f"  goal <= 1.01: {'met' if rel <= 1.01 else 'NOT met'}" if name == compiled_int4 else ""
                log(f"  {name} / fp32: {rel:.4f}{goal}")

    log("")
    log(f"total {time.perf_counter() - t_start:.0f} s")


if __name__ == "__main__":
    main()
