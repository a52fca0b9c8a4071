"""Reading GGUF files (llama.cpp's format) into PyTorch, with the ``gguf`` package.

A GGUF file is a header of key/value metadata (``general.architecture``, ``llama.block_count``,
the tokenizer's vocabulary, ...) followed by named tensors, each in a storage type: F32, F16, or a
block-quantised one such as Q8_0 (32 int8 + one fp16 scale per block) or Q4_1 (32 4-bit values +
fp16 scale and minimum). ``gguf.quants.dequantize`` turns any of them back into float32;
``read_tensors`` decodes Q8_0, Q4_0 and Q4_1 with ``llmlab.quant.gguf_blocks`` instead (the same values, in
torch, ~3x faster).

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
    """A ``gguf.GGUFReader`` on ``path`` (memory-mapped). Parsing the header takes ~1 s for SmolLM2,
    most of it the 49K-entry vocabulary, so the reader is shared: the tokenizer and the model loader
    of one process parse the file once (a changed file, by mtime or size, is read again)."""
    path = validate.path("path", path)
    if not path.is_file():
        raise FileNotFoundError(f"GGUF file not found: {path}")
    stat = path.stat()
    return _reader(str(path.resolve()), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=2)
def _reader(path: str, mtime_ns: int, size: int):
    return _plain_reader_class()(path)


@lru_cache(maxsize=1)
def _plain_reader_class():
    """``gguf.GGUFReader`` reading through a plain ``np.ndarray`` view of its memory map. The reader slices its
    ``np.memmap`` some 800,000 times to parse the header, and each slice of a memmap runs numpy's Python-level
    ``memmap.__array_finalize__``: a plain view of the same mapping parses SmolLM2's header ~3x faster."""
    import gguf  # imported here: llmlab's import stays light

    class PlainGGUFReader(gguf.GGUFReader):
        @property
        def data(self) -> np.ndarray:
            return self._plain

        @data.setter
        def data(self, value: np.ndarray) -> None:
            self._plain = value.view(np.ndarray)  # the same read-only pages; the view keeps the map open

    return PlainGGUFReader


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
    _check_reader(reader)
    out = {}
    for t in reader.tensors:
        shape = tuple(int(n) for n in reversed(t.shape.tolist()))
        values = _dequantize(t)
        if values.numel() != int(np.prod(shape)):
            raise ValueError(f"GGUF tensor {t.name}: {values.numel()} values after dequantising, "
                             f"expected shape {shape}")
        out[t.name] = values.reshape(shape)
    return out


def _dequantize(t) -> torch.Tensor:
    """One tensor of a reader as float32 values, in a tensor of its own (not a view of the memory map)."""
    from gguf.quants import dequantize

    from llmlab.quant.gguf_blocks import DEQUANTIZE

    kind = t.tensor_type.name
    if kind in DEQUANTIZE:  # Q8_0, Q4_0, Q4_1 in torch: gguf's numpy values bit for bit, ~3x faster
        return DEQUANTIZE[kind](torch.from_numpy(np.array(t.data, dtype=np.uint8)))
    array = np.asarray(dequantize(t.data, t.tensor_type), dtype=np.float32)
    if not array.flags.writeable:  # F32 tensors come back as views of the read-only memory map
        array = array.copy()
    return torch.from_numpy(array)


def tensor_types(reader) -> dict[str, str]:
    """Storage type of each tensor, e.g. {'token_embd.weight': 'Q8_0', 'blk.0.attn_q.weight': 'Q4_1', ...}."""
    _check_reader(reader)
    return {t.name: t.tensor_type.name for t in reader.tensors}
