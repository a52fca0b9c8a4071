"""A scaling ladder: tiny byte-level decoders of growing width, each trained on the same pydoc token budget.

    .venv/bin/python benchmarks/scaling_ladder.py     # ~4 min on 2 cores; writes llmlab/resources/scaling_ladder.json
    .venv/bin/python benchmarks/scaling_ladder.py --steps 20 --out /tmp/ladder.json   # smoke run

Every rung is a ``llmlab.nn.model.Decoder`` with 2 blocks, heads of width 8 (16 from width 64 on), SwiGLU width
3 x dim, a byte vocabulary (256 tokens, so the embedding stays small) and the same training recipe
(``llmlab.train.train``: AdamW, warm-up + cosine, clipping) for the same number of steps, batch and window: a
fixed budget of tokens, as in a compute-limited sweep. Each rung is trained with two seeds. ``N`` is the count of
non-embedding parameters (Kaplan et al. 2020 fit L(N) on those), the loss is the mean cross-entropy over 32
fixed windows of the held-out pydoc topics (nats per byte). Notebook 16 fits L(N) = a N^-alpha + c to the file
and extrapolates it; it never trains the ladder itself.
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from llmlab import train
from llmlab.data import pydoc_bytes
from llmlab.nn.model import Decoder, DecoderConfig

ROOT = Path(__file__).resolve().parents[1]
WIDTHS = (8, 12, 16, 24, 32, 48, 64, 96, 128)


def rung_config(dim: int) -> DecoderConfig:
    head = 8 if dim < 64 else 16
    heads = max(1, dim // head)
    return DecoderConfig(vocab_size=256, dim=dim, n_layers=2, n_heads=heads, n_kv_heads=heads, hidden_dim=3 * dim,
                         max_seq_len=128, rope_theta=10_000.0)


def non_embedding_params(model: Decoder) -> int:
    return sum(p.numel() for name, p in model.named_parameters() if "embed" not in name)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--block", type=int, default=64)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "llmlab" / "resources" / "scaling_ladder.json"))
    args = ap.parse_args()
    torch.set_num_threads(min(2, torch.get_num_threads()))
    train_ids, val_ids = torch.tensor(pydoc_bytes("train")), torch.tensor(pydoc_bytes("val"))
    rungs = []
    for dim in WIDTHS:
        losses, seconds, n, total = [], 0.0, 0, 0
        for seed in range(args.seeds):
            torch.manual_seed(seed)
            model = Decoder(rung_config(dim))
            n, total = non_embedding_params(model), sum(p.numel() for p in model.parameters())
            cfg = train.TrainConfig(steps=args.steps, batch_size=args.batch, block_size=args.block, max_lr=3e-3,
                                    min_lr=3e-4, warmup_steps=max(1, args.steps // 20), eval_every=args.steps,
                                    eval_batches=1, seed=seed)
            hist = train.train(model, train_ids, val_ids, cfg, progress=False)
            losses.append(train.estimate_loss(model, val_ids, 32, args.block, n_batches=1))
            seconds += hist.seconds
        rungs.append({"dim": dim, "non_embedding_params": n, "params": total, "val_loss": losses,
                      "seconds": round(seconds, 1)})
        print(f"dim {dim:3d}: N = {n:7,d} non-embedding parameters, val loss {[round(x, 4) for x in losses]} "
              f"({seconds:.0f} s)", flush=True)
    out = {"what": "tiny byte-level decoders (2 blocks) trained on pydoc for a fixed token budget; "
                   "val_loss in nats per byte on the held-out topics, one value per seed",
           "tokens_per_run": args.steps * args.batch * args.block, "steps": args.steps, "batch": args.batch,
           "block": args.block, "seeds": args.seeds, "torch": torch.__version__, "python": platform.python_version(),
           "rungs": rungs}
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    start = time.perf_counter()
    main()
    print(f"{time.perf_counter() - start:.0f} s")
