"""Encode the pydoc corpus with SmolLM2's tokenizer three ways: llmlab, HF tokenizers, tiktoken.

    python benchmarks/bpe_encode.py

All three use the same vocabulary and merges, read from SmolLM2's GGUF:

* llmlab: ``load_smollm2_tokenizer()``, pure Python with a per-piece cache. "cold" starts from an
  empty cache (the first text a program sees), "warm" encodes the corpus a second time.
* HF tokenizers: BPE from the same vocab/merges, Digits(individual_digits=True) + ByteLevel
  pre-tokeniser, as SmolLM2's tokenizer.json has it. One call on the whole text; ``encode_batch``
  on the 79 topics may use several threads.
* tiktoken: an ``Encoding`` built offline from ranks bytes -> id and ``SMOLLM2_PATTERN`` (one regex
  equal to the two HF pre-tokenisation steps). tiktoken merges by the rank of the merged token,
  not of the pair, and takes a whole piece that is in the vocabulary without merging; both rules
  give BPE's result when every token's merge path is consistent with the id order, as it is here
  (the ids are checked below; any difference would be reported).

Speeds are best of ``--repeat`` runs, in MB/s of UTF-8 input.
"""
from __future__ import annotations

import argparse
import os
import time

from llmlab.data import pydoc_text, pydoc_topics
from llmlab.models import smollm2_gguf_path
from llmlab.tokenization import bpe
from llmlab.tokenization.smollm2 import SMOLLM2_PATTERN, gguf_tokenizer_fields, load_smollm2_tokenizer
from timing import best_time  # noqa: E402 (also puts the repository on sys.path)

from tests.oracles import hf_smollm2_tokenizer  # noqa: E402


def tiktoken_encoding(tok: bpe.ByteBPE):
    import tiktoken

    special_ids = set(tok.special_tokens.values())
    ranks = {b: i for i, b in tok.vocab.items() if i not in special_ids}
    return tiktoken.Encoding(
        "smollm2", pat_str=SMOLLM2_PATTERN, mergeable_ranks=ranks, special_tokens=tok.special_tokens
    )


def first_difference(a: list[int], b: list[int]) -> str:
    if a == b:
        return "identical"
    i = next((k for k, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    return f"differ at token {i} of {len(a)}/{len(b)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    text = pydoc_text()
    topics = list(pydoc_topics().values())
    mb = len(text.encode("utf-8")) / 1e6

    t0 = time.perf_counter()
    ours = load_smollm2_tokenizer()
    t_load = time.perf_counter() - t0
    fields = gguf_tokenizer_fields(str(smollm2_gguf_path()))
    hf = hf_smollm2_tokenizer(fields)
    enc = tiktoken_encoding(ours)

    rows = []
    t_cold = time.perf_counter()
    ids = ours.encode(text)
    rows.append(("llmlab (cold cache)", time.perf_counter() - t_cold, ids))

    def warm():
        return ours.encode(text)

    rows.append(("llmlab (warm cache)", *best_time(warm, args.repeat)))
    rows.append(("HF tokenizers", *best_time(lambda: hf.encode(text).ids, args.repeat)))
    t_batch, batch = best_time(lambda: hf.encode_batch(topics), args.repeat)
    rows.append(("HF encode_batch(topics)", t_batch, [i for e in batch for i in e.ids]))
    rows.append(("tiktoken", *best_time(lambda: enc.encode(text, allowed_special="all"), args.repeat)))
    per_topic = [i for t in topics for i in ours.encode(t)]

    print(f"pydoc corpus: {len(text):,} characters, {mb:.3f} MB UTF-8, {len(ids):,} SmolLM2 tokens; "
          f"{os.cpu_count()} CPUs; llmlab tokenizer load {t_load:.1f} s (GGUFReader)")
    t_ref = rows[0][1]
    print(f"{'tokenizer':<26} {'seconds':>8} {'MB/s':>7} {'speed/llmlab cold':>18}  ids vs llmlab")
    for name, t, out in rows:
        reference = per_topic if "topics" in name else ids
        print(f"{name:<26} {t:>8.3f} {mb / t:>7.2f} {t_ref / t:>17.1f}x  {first_difference(reference, out)}")
    print("(encode_batch is compared with llmlab encoding topic by topic; the other rows with the whole text)")


if __name__ == "__main__":
    main()
