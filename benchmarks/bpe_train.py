"""Time BPE training on the pydoc corpus: llmlab's incremental trainer vs HF tokenizers vs the naive one.

    python benchmarks/bpe_train.py                 # vocab 2,048 and 8,192; naive at 2,048 (~1 min)
    python benchmarks/bpe_train.py --naive-chars 100000   # naive on a slice (all trainers then use it for that row)

All three use GPT-2's pre-tokeniser on the same text and produce the same merges (checked below);
the naive trainer recounts every pair for every merge, so it runs at 2,048 only. Times are the best
of ``--repeat`` runs (the naive one runs once). HF tokenizers may use several threads (rayon).
"""
from __future__ import annotations

import argparse
import os

from llmlab.data import pydoc_text
from llmlab.tokenization import bpe
from timing import best_time  # noqa: E402 (also puts the repository on sys.path)

from tests.oracles import hf_train_bpe  # noqa: E402


def as_bytes(merges, vocab) -> list[tuple[bytes, bytes]]:
    return [(vocab[a], vocab[b]) for a, b in merges]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vocab", type=int, nargs="+", default=[2048, 8192])
    parser.add_argument("--naive-vocab", type=int, default=2048, help="run the naive trainer at this size only")
    parser.add_argument("--naive-chars", type=int, default=0, help="run the naive row on the first N characters")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    corpus = pydoc_text()
    print(f"pydoc corpus: {len(corpus):,} characters, {len(corpus.encode()):,} bytes; {os.cpu_count()} CPUs")
    print(f"{'vocab':>6} {'text chars':>10} {'llmlab s':>9} {'HF s':>7} {'naive s':>8} "
          f"{'llmlab/HF':>9} {'naive/llmlab':>12}  same merges")
    for vocab_size in args.vocab:
        naive_here = vocab_size == args.naive_vocab
        text = corpus[: args.naive_chars] if naive_here and args.naive_chars else corpus
        t_ours, (merges, vocab) = best_time(lambda: bpe.train_bpe(text, vocab_size), args.repeat)
        t_hf, hf_merges = best_time(lambda: hf_train_bpe(text, vocab_size), args.repeat)
        same = [as_bytes(merges, vocab) == hf_merges]
        t_naive = naive_ratio = None
        if naive_here:
            t_naive, (naive_merges, naive_vocab) = best_time(lambda: bpe.train_bpe_naive(text, vocab_size), 1)
            same.append(as_bytes(naive_merges, naive_vocab) == as_bytes(merges, vocab))
            naive_ratio = t_naive / t_ours
        print(
            f"{vocab_size:>6} {len(text):>10,} {t_ours:>9.2f} {t_hf:>7.2f} "
            f"{(f'{t_naive:.1f}' if t_naive else 'skipped'):>8} {t_ours / t_hf:>8.1f}x "
            f"{(f'{naive_ratio:.0f}x' if naive_ratio else '-'):>12}  "
            f"{'HF' + (' + naive' if len(same) > 1 else '')}: {'yes' if all(same) else 'NO'}"
        )
    print("naive: recounts all pairs every merge; run only at vocab", args.naive_vocab,
          "(too slow above)" + (f", on the first {args.naive_chars:,} characters" if args.naive_chars else ""))
    print("targets: llmlab/HF <= 10x, naive/llmlab >= 20x")


if __name__ == "__main__":
    main()
