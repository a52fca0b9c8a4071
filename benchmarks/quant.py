"""Quantization results for SmolLM2-135M and all-MiniLM-L6-v2: accuracy, bytes and decode speed per format.

    python benchmarks/quant.py --quick        # 4 windows of 512 tokens, 100 sentences: ~5 min on 2 shared cores
    python benchmarks/quant.py                # all of pydoc val in windows of 1024 tokens: ~20 min on 2 shared cores
    python benchmarks/quant.py --act-order    # + int4 GPTQ g64 with act_order (one more GPTQ run)
    python benchmarks/quant.py --no-speed --no-minilm      # SmolLM2's perplexity rows only

Everything is offline, on the real weights (``load_smollm2``, ``load_minilm``), always quantizing a deep
copy of the float32 model. Only the linear layers of the blocks (``llmlab.quant.apply.block_linears``)
are quantized; embeddings (and SmolLM2's tied LM head) stay float32 in every row, so "linear MB" counts
the block linears alone.

SmolLM2-135M: perplexity on a fixed slice of the pydoc *validation* split, non-overlapping windows of
``--window`` tokens (each window predicts its ``--window`` next tokens, batched forward +
cross-entropy); by default all full windows of 1024 that the split holds (11: it has ~12,000
tokens). Rows:

* fp32; int8 RTN (round-to-nearest) symmetric per output channel;
* int4 RTN symmetric in groups of 32 and of 64, int4 GPTQ symmetric g64 (``gptq_model``, calibrated
  on 8 x 256 tokens of pydoc *train*), optionally GPTQ g64 with ``act_order``; 3-bit RTN and GPTQ g64.
  SmolLM2's width is 576 = 4.5 x 128: groups of 128, the usual int4 setting, do not divide it, so
  SmolLM2 takes g64 here (MiniLM, widths 384 and 1536, takes g128);
* llama.cpp's Q8_0 and Q4_0 blocks (``gguf_blocks.fake_quantize``). Q4_1 is not a row: SmolLM2's GGUF
  weights already are Q4_1 groups of 32 (our fp32 model is their dequantization), so Q4_1 is lossless;
* activations quantized too (``smooth.FakeQuantLinear``): W8A8 per token x per channel; W8A8 after
  SmoothQuant alpha=0.5 (activation maxima from ``linear_inputs`` on the calibration batches); LLM.int8
  (inputs with |x| > 6 kept in float).

Linear MB as stored: fp32 4 bytes a weight; RTN/GPTQ codes packed at b bits plus one fp16 scale per
group (``QuantizedTensor.nbytes``; act_order adds GPTQ's int32 g_idx per input column); Q8_0/Q4_0
``BLOCK_BYTES`` per 32 weights; W8A8 rows store int8 weights per channel (LLM.int8's float outlier
columns are picked per batch at run time and not counted). Decode tok/s (batch 1, greedy, ``--new-tokens``
tokens after a short chat prompt, 1 / the median decode step, median over ``--repeats`` rounds) is
measured per storage format where a kernel exists, with ``FastDecoder`` and an fp32 LM head everywhere:
fp32 dense; int8 per channel (``Int8WeightOnlyLinear``: torch's ``_weight_int8pack_mm``, bf16
activations); int4 g32 and g64 (``Int4WeightOnlyLinear.from_quantized`` of the symmetric RTN codes:
``_weight_int4pack_mm_for_cpu``, bf16 activations). GPTQ rows store the same codes and scales as the
RTN row of their group size, so they reuse its speed (same kernel, same bytes); 3-bit rows live in the
int4 container (speed of int4 g64; the MB column counts 3-bit packing); act_order's permuted groups do
not fit the int4 kernel; Q8_0/Q4_0/W8A8 have no kernel here ("—"). Extra decode paths explain the
int8/int4 figures: dense bf16 weights (F.linear in bf16), int8 dequantised to bf16 then F.linear at
every call, int4 g32 with fp32 activations (the same int4 kernel run in float32), and decode.py's int4
g32 with an int8 head. After one warm-up run each, every path runs once per round, so that load from
other processes hits all alike.

all-MiniLM-L6-v2: mean cosine between each format's sentence embeddings and fp32's, and nearest-
neighbour agreement (the fraction of sentences whose most similar other sentence is the same as with
fp32), over ``--sentences`` sentences of pydoc val (split on '. ', 5-60 words); rows fp32, int8 per
channel, int4 RTN g32 / g128, int4 GPTQ g128 (calibrated on 16 x 128 MiniLM tokens of pydoc train),
3-bit RTN and GPTQ g128, Q8_0, Q4_0.

GPTQ's figures can move a little between machines and thread counts: its rounding decisions hang on the
last bits of float32 matmuls (the Hessians, the block updates), and its sequential rounding amplifies
them. Its Cholesky step runs in float64 since that step amplified them most (float32 factors gave 18.3
to 21.1 perplexity at 4 bits on a 1024-token pydoc slice; float64, 19.2 on every run). The RTN and GGUF rows
are exactly reproducible.

Timings on a shared machine are noisy: compare rows of one run, not runs of different days.
"""
from __future__ import annotations

import argparse
import copy
import math
import os
import platform
import statistics
import time
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from llmlab.data import pydoc_text
from llmlab.inference.fast_decoder import FastDecoder, dense_linear
from llmlab.inference.generation import stream
from llmlab.metrics.speed import measure_generation
from llmlab.models import load_minilm, load_smollm2
from llmlab.models.minilm import embed
from llmlab.quant import gguf_blocks
from llmlab.quant.affine import quantize_weight
from llmlab.quant.apply import block_linears, linear_weight_bytes, map_weights, replace_linears
from llmlab.quant.gptq import gptq_model
from llmlab.quant.linear import Int4WeightOnlyLinear, Int8WeightOnlyLinear
from llmlab.quant.smooth import FakeQuantLinear, linear_inputs, smooth_scales
from llmlab.tokenization.smollm2 import chat_template, load_smollm2_tokenizer
from llmlab.tokenization.wordpiece import load_minilm_tokenizer

QUESTION = "Explain, step by step, how a hash table works and why lookups are fast on average."
SMOL_GROUP = 64  # the usual g128 does not divide SmolLM2's width (576 = 4.5 x 128): groups of 64
MINI_GROUP = 128
DASH = "—"


def log(msg: str) -> None:
    print(msg, flush=True)


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


# ------------------------------------------------------------------------------------- weight formats
# Each format maps a float weight (N, K) to (its fake-quantized weight, bytes it takes as stored).

Format = Callable[[torch.Tensor], tuple[torch.Tensor, int]]


def rtn(bits: int, group_size: int | None) -> Format:
    """Symmetric round-to-nearest, per output channel (group_size None) or per group of inputs."""
    def fn(w):
        qt = quantize_weight(w, bits, symmetric=True, granularity="channel" if group_size is None else "group",
                             group_size=group_size)
        return qt.dequantize().to(w.dtype), qt.nbytes
    return fn


def gguf(kind: str) -> Format:
    def fn(w):
        nbytes = w.numel() // gguf_blocks.BLOCK * gguf_blocks.BLOCK_BYTES[kind]
        return gguf_blocks.fake_quantize(w, kind).to(w.dtype), nbytes
    return fn


def fake_quantized(model: nn.Module, fmt: Format) -> tuple[nn.Module, int]:
    """A deep copy of ``model`` with every block linear's weight through ``fmt``, and the stored bytes."""
    out, total = copy.deepcopy(model), 0

    def fn(w):
        nonlocal total
        w_hat, nbytes = fmt(w)
        total += nbytes
        return w_hat

    map_weights(out, fn)
    return out, total


def gptq_copy(model: nn.Module, batches: list[tuple], bits: int, group_size: int,
              act_order: bool = False) -> tuple[nn.Module, int, float]:
    """(GPTQ-quantized deep copy, stored bytes, seconds). Bytes as ``QuantizedTensor.nbytes``: codes
    packed at ``bits`` bits, one fp16 scale per group (symmetric: no zero point), + int32 g_idx per
    input column with act_order."""
    out = copy.deepcopy(model)
    t = time.perf_counter()
    results = gptq_model(out, batches, bits, group_size=group_size, symmetric=True, act_order=act_order,
                         progress=True)
    dt = time.perf_counter() - t
    total = sum(math.ceil(r.q.numel() * bits / 8) + 2 * r.scale.numel() + (4 * r.q.shape[1] if act_order else 0)
                for r in results.values())
    return out, total, dt


def int8_channel_bytes(model: nn.Module) -> int:
    """Bytes of the block linears as int8 codes per output channel + one fp16 scale per row."""
    return sum(m.weight.numel() + 2 * m.weight.shape[0] for m in block_linears(model).values())


# ------------------------------------------------------------------------------------- SmolLM2 accuracy


def token_windows(ids: list[int], n: int, length: int) -> torch.Tensor:
    """(n, length + 1): consecutive non-overlapping windows from the start of ``ids``; window i's
    inputs are its first ``length`` ids, its targets the last ``length``."""
    return torch.tensor([ids[i * length:(i + 1) * length + 1] for i in range(n)], dtype=torch.long)


@torch.inference_mode()
def perplexity(model: nn.Module, windows: torch.Tensor, batch: int) -> float:
    nll, count = 0.0, 0
    for i in range(0, len(windows), batch):
        x = windows[i:i + batch]
        logits = model(x[:, :-1])
        nll += float(F.cross_entropy(logits.flatten(0, 1).float(), x[:, 1:].flatten(), reduction="sum"))
        count += x[:, 1:].numel()
    return math.exp(nll / count)


def calibration_chunks(ids: list[int], n: int, length: int) -> torch.Tensor:
    """(n, length): chunks of ``ids`` starting at evenly spaced offsets (fixed: no randomness)."""
    if len(ids) < n * length:
        raise ValueError(f"need {n} x {length} calibration tokens, the text has {len(ids)}")
    starts = [i * (len(ids) - length) // max(n - 1, 1) for i in range(n)]
    return torch.tensor([ids[s:s + length] for s in starts], dtype=torch.long)


def activation_absmax(model: nn.Module, batches: list[tuple]) -> dict[str, torch.Tensor]:
    """max |x_j| per input channel of every block linear over the calibration batches (one batch at a
    time through ``linear_inputs``, so only one batch's inputs are held at once)."""
    names = list(block_linears(model))
    amax: dict[str, torch.Tensor] = {}
    for batch in batches:
        for name, x in linear_inputs(model, [batch], names).items():
            a = x.abs().amax(0)
            amax[name] = a if name not in amax else torch.maximum(amax[name], a)
    return amax


def with_fake_quant_linears(model: nn.Module, make: Callable[[str, nn.Linear], nn.Module]) -> nn.Module:
    """A deep copy of ``model`` with each block linear replaced by ``make(name, linear)``."""
    return replace_linears(copy.deepcopy(model), make)


# ------------------------------------------------------------------------------------- decode paths


class Bf16Linear(nn.Module):
    """Dense bf16 weight, F.linear in bf16: what the int8 and int4 kernels' bf16 activations cost alone."""

    def __init__(self, weight: torch.Tensor):
        super().__init__()
        self.register_buffer("weight", weight.detach().to(torch.bfloat16).contiguous())

    def forward(self, x):
        return F.linear(x.to(torch.bfloat16), self.weight).to(x.dtype)


class Int8DequantLinear(nn.Module):
    """int8 codes per channel, dequantised to a bf16 weight at every call, then F.linear in bf16."""

    def __init__(self, weight: torch.Tensor):
        super().__init__()
        ref = Int8WeightOnlyLinear.from_float(weight)
        self.register_buffer("q", ref.q)
        self.register_buffer("scale", ref.scale.to(torch.bfloat16)[:, None])

    def forward(self, x):
        return F.linear(x.to(torch.bfloat16), self.q.to(torch.bfloat16) * self.scale).to(x.dtype)


class Int4Fp32Activations(nn.Module):
    """The int4 kernel (``_weight_int4pack_mm_for_cpu``) called with float32 activations and scales
    instead of bf16 ones (the kernel accepts both)."""

    def __init__(self, inner: Int4WeightOnlyLinear):
        super().__init__()
        self.inner = inner
        self.register_buffer("scale_zero", None if inner.packed is None else inner.scale_zero.float())

    def forward(self, x):
        if self.inner.packed is None:
            return self.inner(x)
        x2 = x.reshape(-1, x.shape[-1]).float()
        y = torch.ops.aten._weight_int4pack_mm_for_cpu(x2, self.inner.packed, self.inner.group_size, self.scale_zero)
        return y.to(x.dtype).reshape(*x.shape[:-1], -1)


def int4_rtn(group_size: int) -> Callable[[torch.Tensor], nn.Module]:
    """Int4WeightOnlyLinear holding the symmetric RTN codes of the accuracy rows (the same container
    takes GPTQ's codes, and 3-bit ones)."""
    return lambda w: Int4WeightOnlyLinear.from_quantized(
        quantize_weight(w, 4, symmetric=True, granularity="group", group_size=group_size))


def time_decoders(decoders: dict[str, nn.Module], ids: list[int], n: int, warmup: int,
                  repeats: int) -> dict[str, float]:
    """{name: decode tok/s}: 1 / median decode step of each run, median over ``repeats`` rounds; every
    decoder runs once per round (after ``warmup`` untimed runs each)."""
    for name, dec in decoders.items():
        for _ in range(warmup):
            for _ in stream(dec, ids, n):
                pass
    per_round: dict[str, list[float]] = {name: [] for name in decoders}
    for k in range(repeats):
        parts = []
        for name, dec in decoders.items():
            r = measure_generation(lambda dec=dec: stream(dec, ids, n), warmup=0, repeats=1)
            per_round[name].append(1 / r.latency_median_s)
            parts.append(f"{name} {per_round[name][-1]:.1f}")
        log(f"  round {k + 1}/{repeats} (tok/s): " + ", ".join(parts))
    return {name: statistics.median(v) for name, v in per_round.items()}


# ------------------------------------------------------------------------------------- MiniLM


def val_sentences(n: int) -> list[str]:
    """The first n sentences of pydoc val (whitespace collapsed, split on '. ') of 5 to 60 words."""
    text = " ".join(pydoc_text("val").split())
    keep = [s.strip() for s in text.split(". ") if 5 <= len(s.split()) <= 60]
    return keep[:n]


def nearest_other(e: torch.Tensor) -> torch.Tensor:
    """(N,) index of each row's most cosine-similar other row (rows L2-normalised)."""
    sim = e @ e.T
    sim.fill_diagonal_(-math.inf)
    return sim.argmax(1)


def minilm_calibration(tokenizer, n: int, length: int) -> torch.Tensor:
    """(n, length) MiniLM ids: [CLS] + length-2 ids + [SEP] from n evenly spaced places in pydoc train."""
    text = pydoc_text("train")
    cls, sep = tokenizer.encode("")
    rows = []
    for i in range(n):
        start = i * (len(text) - 20 * length) // max(n - 1, 1)
        ids = tokenizer.encode(text[start:start + 20 * length], add_special_tokens=False)[:length - 2]
        if len(ids) < length - 2:
            raise ValueError("not enough MiniLM tokens in a calibration slice")
        rows.append([cls, *ids, sep])
    return torch.tensor(rows, dtype=torch.long)


# ------------------------------------------------------------------------------------- tables


def markdown(header: list[str], rows: list[list[str]], align: str) -> str:
    """A markdown table; ``align`` holds 'l' or 'r' per column."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]

    def line(cells):
        return "| " + " | ".join(c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(cells, widths, align)) + " |"

    sep = "|" + "|".join(("-" * (w + 1) + ":") if a == "r" else ("-" * (w + 2)) for w, a in zip(widths, align)) + "|"
    return "\n".join([line(header), sep, *(line(r) for r in rows)])


# ------------------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="4 windows of 512 tokens and 100 sentences (other options still apply): "
                             "~5 min on 2 cores, 1.5 of them the two GPTQ runs")
    parser.add_argument("--windows", type=int, default=None,
                        help="SmolLM2 perplexity windows (default: all full windows pydoc val holds; 4 with --quick)")
    parser.add_argument("--window", type=int, default=None, help="tokens per window (default 1024; 512 with --quick)")
    parser.add_argument("--batch", type=int, default=2, help="windows per forward pass (default 2)")
    parser.add_argument("--sentences", type=int, default=None, help="MiniLM sentences (default 300; 100 with --quick)")
    parser.add_argument("--act-order", action="store_true", help="add int4 GPTQ g64 with act_order (one more GPTQ run)")
    parser.add_argument("--new-tokens", type=int, default=32, help="tokens decoded per timed run (default 32)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed decode runs per path (default 1)")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds over all decode paths; median (default 3)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads (default: all CPUs)")
    parser.add_argument("--no-speed", action="store_true", help="skip decode timing")
    parser.add_argument("--no-smollm2", action="store_true", help="skip SmolLM2")
    parser.add_argument("--no-minilm", action="store_true", help="skip MiniLM")
    args = parser.parse_args()
    window = args.window or (512 if args.quick else 1024)
    n_sentences = args.sentences or (100 if args.quick else 300)
    if window < 2 or args.batch < 1 or n_sentences < 3 or args.new_tokens < 2 or args.repeats < 1 \
            or args.warmup < 0 or args.threads < 1 or (args.windows is not None and args.windows < 1):
        parser.error("need --window >= 2, --windows/--batch/--repeats/--threads >= 1, --sentences >= 3, "
                     "--new-tokens >= 2, --warmup >= 0")
    torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    t_start = time.perf_counter()
    machine = (f"torch {torch.__version__}, {cpu_name()}, {torch.get_num_threads()} of {os.cpu_count()} threads, "
               f"Python {platform.python_version()}")
    log(machine)

    smol_rows: list[list[str]] = []
    speed_rows: list[list[str]] = []
    mini_rows: list[list[str]] = []
    smol_note = mini_note = ""

    # ========================================================================================= SmolLM2
    if not args.no_smollm2:
        tok = load_smollm2_tokenizer()
        val_ids = tok.encode(pydoc_text("val"))
        fit = (len(val_ids) - 1) // window
        n_windows = args.windows or (4 if args.quick else fit)
        if n_windows > fit:
            log(f"pydoc val has {len(val_ids)} SmolLM2 tokens: only {fit} windows of {window} fit, not {n_windows}")
            n_windows = fit
        windows = token_windows(val_ids, n_windows, window)
        train_ids = tok.encode(pydoc_text("train"))
        calib = calibration_chunks(train_ids, 8, 256)
        calib_batches = [(calib[i:i + 2],) for i in range(0, len(calib), 2)]  # 4 batches of 2 x 256
        log(f"SmolLM2: perplexity over {n_windows} windows x {window} tokens of pydoc val "
            f"({windows[:, 1:].numel()} predicted tokens, of {len(val_ids)}); calibration 8 x 256 tokens of "
            f"pydoc train")

        t = time.perf_counter()
        model = load_smollm2(device="cpu")
        log(f"loaded SmolLM2-135M fp32 in {time.perf_counter() - t:.1f} s")
        fp32_mb = linear_weight_bytes(model) / 1e6
        emb_mb = model.tok_embeddings.weight.numel() * 4 / 1e6

        # (name, builder () -> (model, bytes, note), decode path whose speed the row takes, how)
        G = SMOL_GROUP

        def weights(fmt):
            return lambda: (*fake_quantized(model, fmt), "")

        plan: list[tuple[str, Callable, str | None, str]] = [
            ("fp32", lambda: (model, linear_weight_bytes(model), ""), "fp32", "fp32 (measured)"),
            ("int8 RTN per-channel", weights(rtn(8, None)), "int8 per-channel", "int8 per-channel (measured)"),
            ("int4 RTN g32", weights(rtn(4, 32)), "int4 g32", "int4 g32 (measured)"),
            (f"int4 RTN g{G} (for g128)", weights(rtn(4, G)), f"int4 g{G}", f"int4 g{G} (measured)"),
        ]

        def gptq_row(bits, act_order=False):
            def build():
                m, nbytes, dt = gptq_copy(model, calib_batches, bits, G, act_order)
                return m, nbytes, f"GPTQ {dt:.0f} s"
            return build

        plan.append((f"int4 GPTQ g{G}", gptq_row(4), f"int4 g{G}", f"= int4 g{G} (same kernel, same bytes)"))
        if args.act_order:
            plan.append((f"int4 GPTQ g{G} act_order", gptq_row(4, True), None, "permuted groups: no int4 kernel"))
        plan += [
            (f"3-bit RTN g{G}", weights(rtn(3, G)), f"int4 g{G}", f"= int4 g{G} (int4 container)"),
            (f"3-bit GPTQ g{G}", gptq_row(3), f"int4 g{G}", f"= int4 g{G} (int4 container)"),
            ("Q8_0", weights(gguf("Q8_0")), None, "no kernel here"),
            ("Q4_0", weights(gguf("Q4_0")), None, "no kernel here"),
            ("W8A8 per-token", lambda: (with_fake_quant_linears(model, lambda n, m: FakeQuantLinear(m.weight, m.bias)),
                                        int8_channel_bytes(model), ""), None, "fake quantization"),
        ]

        def smoothquant():
            t = time.perf_counter()
            amax = activation_absmax(model, calib_batches)
            out = with_fake_quant_linears(model, lambda n, m: FakeQuantLinear(
                m.weight, m.bias, smooth=smooth_scales(amax[n], m.weight.abs().amax(0), 0.5)))
            return out, int8_channel_bytes(model), f"calibration {time.perf_counter() - t:.0f} s"

        plan += [
            ("W8A8 + SmoothQuant α=0.5", smoothquant, None, "fake quantization"),
            ("LLM.int8 (threshold 6.0)", lambda: (with_fake_quant_linears(
                model, lambda n, m: FakeQuantLinear(m.weight, m.bias, outlier_threshold=6.0)),
                int8_channel_bytes(model), ""), None, "fake quantization"),
        ]

        results = []  # (name, ppl, MB, decode path, how its speed was had)
        for i, (name, build, speed_key, how) in enumerate(plan):
            t = time.perf_counter()
            m, nbytes, note = build()
            t_build = time.perf_counter() - t
            t = time.perf_counter()
            ppl = perplexity(m, windows, args.batch)
            t_ppl = time.perf_counter() - t
            if m is not model:
                del m
            results.append((name, ppl, nbytes / 1e6, speed_key, how))
            log(f"[{i + 1}/{len(plan)}] {name:<28} ppl {ppl:8.3f}  {nbytes / 1e6:6.1f} MB  "
                f"(build {t_build:.0f} s{', ' + note if note else ''}; ppl {t_ppl:.0f} s)")

        # ----------------------------------------------------------------------------------- speed
        speeds: dict[str, float] = {}
        if not args.no_speed:
            ids = tok.encode(chat_template([{"role": "user", "content": QUESTION}]))
            log(f"decode speed: {args.new_tokens} new tokens after a {len(ids)}-token chat prompt, greedy, batch 1; "
                f"{args.warmup} warm-up run(s) each, then {args.repeats} interleaved rounds")
            t = time.perf_counter()
            int4_32, int4_g = int4_rtn(32), int4_rtn(G)
            decoders = {
                "fp32": FastDecoder(model),
                "int8 per-channel": FastDecoder(model, Int8WeightOnlyLinear.from_float, head=dense_linear),
                "int4 g32": FastDecoder(model, int4_32, head=dense_linear),
                f"int4 g{G}": FastDecoder(model, int4_g, head=dense_linear),
                "bf16 dense": FastDecoder(model, Bf16Linear, head=dense_linear),
                "int8 dequant→bf16": FastDecoder(model, Int8DequantLinear, head=dense_linear),
                "int4 g32 fp32 act.": FastDecoder(model, lambda w: Int4Fp32Activations(int4_32(w)), head=dense_linear),
                "int4 g32 + int8 head": FastDecoder(model, int4_32, head=Int8WeightOnlyLinear.from_float),
            }
            log(f"built {len(decoders)} FastDecoders in {time.perf_counter() - t:.0f} s")
            speeds = time_decoders(decoders, ids, args.new_tokens, args.warmup, args.repeats)
            del decoders
            explain = [
                ("fp32", "F.linear fp32 (MKL), 4 fused matmuls per layer"),
                ("bf16 dense", "F.linear with bf16 weights and activations: the kernels' activation dtype alone"),
                ("int8 per-channel", "_weight_int8pack_mm, bf16 activations (the int8 rows' speed)"),
                ("int8 dequant→bf16", "int8 codes -> bf16 weight at every call, then F.linear bf16"),
                ("int4 g32", "_weight_int4pack_mm_for_cpu, bf16 activations (the int4 g32 rows)"),
                (f"int4 g{G}", f"the same kernel, groups of {G} (int4 g{G}, GPTQ g{G} and 3-bit rows)"),
                ("int4 g32 fp32 act.", "_weight_int4pack_mm_for_cpu called with fp32 activations and scales"),
                ("int4 g32 + int8 head", "decode.py's int4: the tied LM head as int8 too (113 MB fp32 -> 28 MB)"),
            ]
            for name, what in explain:
                speed_rows.append([name, f"{speeds[name]:.1f}", f"{speeds[name] / speeds['fp32']:.2f}x", what])

        fp32_ppl = results[0][1]
        for name, ppl, mb, key, how in results:
            speed = f"{speeds[key]:.1f}" if key in speeds else DASH
            src = how if key is None or key in speeds else "not timed (--no-speed)"
            smol_rows.append([name, f"{ppl:.3f}", f"{100 * (ppl / fp32_ppl - 1):+.1f}%", f"{mb:.1f}",
                              f"{fp32_mb / mb:.1f}x", speed, src])
        smol_note = (f"Perplexity: pydoc val, {n_windows} windows x {window} tokens. Linear MB: the blocks' linears "
                     f"as stored; the tied embedding / LM head stays fp32 ({emb_mb:.1f} MB) in every row. g{G} stands "
                     f"for the usual g128, which does not divide 576 = 4.5 x 128. Decode tok/s: FastDecoder, fp32 LM head, "
                     f"{args.new_tokens} tokens, median of {args.repeats} rounds.")
        rtn3 = next(r[1] for r in results if r[0].startswith("3-bit RTN"))
        gptq3 = next(r[1] for r in results if r[0].startswith("3-bit GPTQ"))
        rtn4 = next(r[1] for r in results if r[0].startswith(f"int4 RTN g{G}"))
        gptq4 = next(r[1] for r in results if r[0] == f"int4 GPTQ g{G}")
        verdict = {True: "GPTQ lower", False: "GPTQ NOT lower"}
        smol_note += (f"\nGPTQ vs RTN perplexity: 3-bit {gptq3:.3f} vs {rtn3:.3f} ({verdict[gptq3 < rtn3]}), "
                      f"4-bit g{G} {gptq4:.3f} vs {rtn4:.3f} ({verdict[gptq4 < rtn4]}).")
        del model

    # ========================================================================================= MiniLM
    if not args.no_minilm:
        t = time.perf_counter()
        enc = load_minilm(device="cpu")
        wp = load_minilm_tokenizer()
        sentences = val_sentences(n_sentences)
        calib = minilm_calibration(wp, 16, 128)
        log(f"MiniLM: loaded in {time.perf_counter() - t:.1f} s; {len(sentences)} sentences of pydoc val; "
            f"calibration {calib.shape[0]} x {calib.shape[1]} tokens of pydoc train")
        ref = embed(enc, wp, sentences)
        ref_nn = nearest_other(ref)
        mini_fp32_mb = linear_weight_bytes(enc) / 1e6
        Gm = MINI_GROUP
        mini_batches = [(calib[i:i + 4],) for i in range(0, len(calib), 4)]

        def mini_gptq(bits):
            def build():
                m, nbytes, dt = gptq_copy(enc, mini_batches, bits, Gm)
                return m, nbytes, f"GPTQ {dt:.0f} s"
            return build

        def mini_weights(fmt):
            return lambda: (*fake_quantized(enc, fmt), "")

        mini_plan = [
            ("fp32", lambda: (enc, linear_weight_bytes(enc), "")),
            ("int8 RTN per-channel", mini_weights(rtn(8, None))),
            ("int4 RTN g32", mini_weights(rtn(4, 32))),
            (f"int4 RTN g{Gm}", mini_weights(rtn(4, Gm))),
            (f"int4 GPTQ g{Gm}", mini_gptq(4)),
            (f"3-bit RTN g{Gm}", mini_weights(rtn(3, Gm))),
            (f"3-bit GPTQ g{Gm}", mini_gptq(3)),
            ("Q8_0", mini_weights(gguf("Q8_0"))),
            ("Q4_0", mini_weights(gguf("Q4_0"))),
        ]
        mini_results = []
        for i, (name, build) in enumerate(mini_plan):
            t = time.perf_counter()
            m, nbytes, note = build()
            e = embed(m, wp, sentences)
            cos = float((e * ref).sum(-1).mean())
            agree = float((nearest_other(e) == ref_nn).float().mean())
            mini_results.append((name, cos, agree, nbytes / 1e6))
            log(f"[{i + 1}/{len(mini_plan)}] MiniLM {name:<22} cosine {cos:.5f}  NN agreement {agree:.3f}  "
                f"{nbytes / 1e6:5.1f} MB  ({time.perf_counter() - t:.0f} s{', ' + note if note else ''})")
        for name, cos, agree, mb in mini_results:
            mini_rows.append([name, f"{cos:.5f}", f"{agree:.3f}", f"{mb:.2f}", f"{mini_fp32_mb / mb:.1f}x"])
        emb_mb = sum(p.numel() for n, p in enc.named_parameters() if "embeddings" in n) * 4 / 1e6
        g = {r[0]: f"{r[1]:.5f} / {r[2]:.3f}" for r in mini_results}
        mini_note = (f"{len(sentences)} sentences of pydoc val; cosine: mean over sentences of cos(format, fp32) "
                     f"embedding; NN agreement: fraction whose nearest other sentence is fp32's. Linear MB: the "
                     f"blocks' linears; embeddings stay fp32 ({emb_mb:.1f} MB)."
                     f"\nGPTQ vs RTN (cosine / NN agreement): 3-bit {g[f'3-bit GPTQ g{Gm}']} vs "
                     f"{g[f'3-bit RTN g{Gm}']}; 4-bit g{Gm} {g[f'int4 GPTQ g{Gm}']} vs {g[f'int4 RTN g{Gm}']}.")

    # ========================================================================================= tables
    log("")
    if smol_rows:
        log("## SmolLM2-135M")
        log(markdown(["format", "perplexity", "vs fp32", "linear MB", "smaller", "decode tok/s", "speed measured on"],
                     smol_rows, "lrrrrrl"))
        log(smol_note)
        log("")
    if speed_rows:
        log("### SmolLM2-135M decode paths (why int8 and int4 run at the speed they do)")
        log(markdown(["decode path", "tok/s", "vs fp32", "what"], speed_rows, "lrrl"))
        log("")
    if mini_rows:
        log("## all-MiniLM-L6-v2")
        log(markdown(["format", "mean cosine", "NN agreement", "linear MB", "smaller"], mini_rows, "lrrrr"))
        log(mini_note)
        log("")
    log(machine)
    log(f"total {time.perf_counter() - t_start:.0f} s")


if __name__ == "__main__":
    main()
