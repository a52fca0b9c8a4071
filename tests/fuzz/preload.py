"""Imported once by the fork server the workers start from, so that a new worker starts in a moment.

Imports torch, every llmlab module and the call tables, and pays the one-off cost of the first model
built on the meta device (about 2 s of lazy registrations). Nothing here starts a thread pool (one
torch thread, no computation on real tensors), so forking afterwards is safe.
"""
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import torch  # noqa: E402

torch.set_num_threads(1)

from tests.fuzz import api, bad, calls, fixtures, worker  # noqa: E402,F401

api.public_callables()
for _module in ("gguf", "gguf.quants", "safetensors.torch", "numpy"):
    try:
        __import__(_module)
    except ImportError:
        pass
try:
    with torch.device("meta"):
        fixtures.decoder()
except Exception:  # noqa: BLE001 - the workers will report a broken model
    pass
