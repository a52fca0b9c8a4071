"""Reading GGUF files (llama.cpp's format) into PyTorch, with the ``gguf`` package.

A GGUF file is a header of key/value metadata (``general.architecture``, ``llama.block_count``,
the tokenizer's vocabulary, ...) followed by named tensors, each in a storage type: F32, F16, or a
block-quantised one such as Q8_0 (32 int8 + one fp16 scale per block) or Q4_1 (32 4-bit values +
fp16 scale and minimum). ``gguf.quants.dequantize`` turns any of them back into float32.

Shapes: GGUF lists dimensions fastest-varying first (ggml's ne[0] is the row length), the reverse
of PyTorch's order. A linear layer's weight listed as [in, out] in the file is (out, in) here,
exactly what ``nn.Linear`` wants; ``read_tensors`` checks every tensor against the reversed shape.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from llmlab import validate


def open_gguf(path: str | Path):
    """A ``gguf.GGUFReader`` on ``path`` (memory-mapped). Parsing the header takes ~3 s for SmolLM2,
    most of it the 49K-entry vocabulary, so the reader is shared: the tokenizer and the model loader
    of one process parse the file once (a changed file, by mtime or size, is read again)."""
    path = validate.path("path", path)
    if not path.is_file():
        raise FileNotFoundError(f"GGUF file not found: {path}")
    stat = path.stat()
    return _reader(str(path.resolve()), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=2)
def _reader(path: str, mtime_ns: int, size: int):
    import gguf  # imported here: llmlab's import stays light

    return gguf.GGUFReader(path)


def _check_reader(reader) -> None:
    import gguf

    if not isinstance(reader, gguf.GGUFReader):
        raise TypeError(f"reader must be a gguf.GGUFReader (open_gguf(path)), got {type(reader).__name__}")


def read_metadata(reader, skip_prefix: tuple[str, ...] = ("tokenizer.ggml.",)) -> dict[str, Any]:
    """The key/value header as plain Python values (str, int, float, lists), minus keys starting with
    ``skip_prefix`` (by default the large tokenizer arrays; pass ``()`` to keep everything; a str is
    one prefix, as for ``str.startswith``)."""
    _check_reader(reader)
    if not isinstance(skip_prefix, str) and not (
            isinstance(skip_prefix, tuple) and all(isinstance(p, str) for p in skip_prefix)):
        raise TypeError(f"skip_prefix must be a tuple of str prefixes, got {skip_prefix!r}")
    return {k: f.contents() for k, f in reader.fields.items() if not k.startswith(skip_prefix)}


def read_tensors(reader) -> dict[str, torch.Tensor]:
    """Every tensor of the file, dequantised to float32, in PyTorch's dimension order: name -> tensor."""
    from gguf.quants import dequantize

    _check_reader(reader)
    out = {}
    for t in reader.tensors:
        shape = tuple(int(n) for n in reversed(t.shape.tolist()))
        array = np.asarray(dequantize(t.data, t.tensor_type), dtype=np.float32)
        if array.size != int(np.prod(shape)):
            raise ValueError(f"GGUF tensor {t.name}: {array.size} values after dequantising, expected shape {shape}")
        if not array.flags.writeable:  # F32 tensors come back as views of the read-only memory map
            array = array.copy()
        out[t.name] = torch.from_numpy(array.reshape(shape))
    return out


def tensor_types(reader) -> dict[str, str]:
    """Storage type of each tensor, e.g. {'token_embd.weight': 'Q8_0', 'blk.0.attn_q.weight': 'Q4_1', ...}."""
    _check_reader(reader)
    return {t.name: t.tensor_type.name for t in reader.tensors}
