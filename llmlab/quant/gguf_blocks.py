"""llama.cpp's block formats Q8_0, Q4_0 and Q4_1, bit for bit as ggml (and the ``gguf`` package) write them.

A row of K weights is cut into blocks of 32; each block stores its own fp16 scale, so an outlier spoils
only 32 weights. Per block (x: the 32 float32 weights, all arithmetic in float32):

Q8_0  34 bytes: d = max|x| / 127 (fp16), then 32 int8     q = roundf(x / d),          x^ = d q
Q4_0  18 bytes: d = m / -8 (fp16), m the x of largest |x|, then 16 bytes of nibbles
                                                          q = min(15, trunc(x / d + 8.5)), x^ = d (q - 8)
Q4_1  20 bytes: d = (max - min) / 15, m = min (fp16 each), then 16 bytes of nibbles
                                                          q = min(15, trunc((x - m) / d + 0.5)), x^ = d q + m

Details that make the bytes equal, each a classic mistake when missed:
- the codes are computed with the float32 scale and its float32 reciprocal (x * (1/d)), *then* d is
  stored as fp16;
- Q8_0 rounds halves away from zero (C's roundf), not to even;
- Q4_0's sign trick: d takes the sign of the extreme weight and divides by -8, so that weight lands
  exactly on code 0 (-8 after the shift) and the asymmetric range [-8, 7] is used to the full;
- nibbles: byte j holds code j in its low half and code j + 16 in its high half (not codes 2j, 2j+1),
  so unpacking is two vectorised shifts over contiguous halves.
"""
from __future__ import annotations

import torch

from llmlab import validate
# round_half_away stays importable from here: the graders use gguf_blocks.round_half_away
from llmlab.quant.affine import round_half_away, round_half_away_unchecked  # noqa: F401

BLOCK = 32
BLOCK_BYTES = {"Q8_0": 2 + BLOCK, "Q4_0": 2 + BLOCK // 2, "Q4_1": 4 + BLOCK // 2}


def to_blocks(x: torch.Tensor) -> torch.Tensor:
    """(..., K) float -> (n_blocks, 32) float32, K a multiple of 32."""
    validate.tensor("x", x, floating=True, finite=True)
    if x.ndim == 0 or x.shape[-1] % BLOCK:
        raise ValueError(f"x's last dimension must be a multiple of {BLOCK}, got shape {tuple(x.shape)}")
    return x.detach().float().reshape(-1, BLOCK)


def _nonempty_blocks(x) -> torch.Tensor:
    """``to_blocks(x)``, refusing an empty x: a tensor of no blocks has no bytes to write."""
    blocks = to_blocks(x)
    if blocks.numel() == 0:
        raise ValueError(f"x is empty, shape {tuple(x.shape)}: there is nothing to quantize")
    return blocks


def _reciprocal(d: torch.Tensor) -> torch.Tensor:
    return torch.where(d == 0, torch.zeros_like(d), 1 / d)  # an all-zero block gets codes 0 (Q8_0) or 8 (Q4_0)


def _fp16_from_bytes(b: torch.Tensor) -> torch.Tensor:
    """(n, 2) uint8 -> (n, 1) float32."""
    return b.contiguous().view(torch.float16).float()


def _check_codes(name: str, q, width: int, top: int | None = None) -> torch.Tensor:
    """q: an integer tensor (n, width), with codes in [0, top] when ``top`` is given."""
    validate.tensor(name, q, ndim=2)
    if q.is_floating_point() or q.is_complex() or q.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer codes, got dtype {q.dtype}")
    if q.shape[1] != width:
        raise ValueError(f"{name} must have shape (n, {width}), got {tuple(q.shape)}")
    if top is not None and q.numel() and (int(q.min()) < 0 or int(q.max()) > top):
        raise ValueError(f"{name} must hold codes in [0, {top}], got codes from {int(q.min())} to {int(q.max())}")
    return q


def _pack_nibbles(q: torch.Tensor) -> torch.Tensor:
    q = q.to(torch.uint8)
    return q[:, :BLOCK // 2] | (q[:, BLOCK // 2:] << 4)


def pack_nibbles(q: torch.Tensor) -> torch.Tensor:
    """(n, 32) integer codes in [0, 15] -> (n, 16) uint8: byte j = q[j] | q[j + 16] << 4."""
    return _pack_nibbles(_check_codes("q", q, BLOCK, 15))


def _unpack_nibbles(packed: torch.Tensor) -> torch.Tensor:
    return torch.cat([packed & 0x0F, packed >> 4], dim=1)


def unpack_nibbles(packed: torch.Tensor) -> torch.Tensor:
    """(n, 16) uint8 -> (n, 32) uint8 codes: the low nibbles are codes 0..15, the high ones 16..31."""
    validate.tensor("packed", packed, ndim=2)
    if packed.dtype != torch.uint8:
        raise TypeError(f"packed must be a uint8 tensor (two codes per byte), got dtype {packed.dtype}")
    if packed.shape[1] != BLOCK // 2:
        raise ValueError(f"packed must have shape (n, {BLOCK // 2}), got {tuple(packed.shape)}")
    return _unpack_nibbles(packed)


# ------------------------------------------------------------------------------------------ codes


def _check_blocks(blocks) -> torch.Tensor:
    validate.tensor("blocks", blocks, ndim=2, floating=True, finite=True)
    if blocks.shape[1] != BLOCK:
        raise ValueError(f"blocks must have shape (n, {BLOCK}), got {tuple(blocks.shape)}")
    return blocks


def _q8_0_codes(blocks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    d = blocks.abs().amax(1, keepdim=True) / 127
    q = round_half_away_unchecked(blocks * _reciprocal(d))
    return d.to(torch.float16), q.to(torch.int8)


def q8_0_codes(blocks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """blocks (n, 32) float32 -> (d (n, 1) float16, q (n, 32) int8)."""
    return _q8_0_codes(_check_blocks(blocks))


def q4_0_codes(blocks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """blocks (n, 32) float32 -> (d (n, 1) float16, q (n, 32) uint8 in [0, 15]); x^ = d (q - 8)."""
    return _q4_0_codes(_check_blocks(blocks))


def _q4_0_codes(blocks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    extreme = blocks.gather(1, blocks.abs().argmax(1, keepdim=True))  # signed: the sign trick
    d = extreme / -8
    q = torch.trunc(blocks * _reciprocal(d) + 8.5).clamp(max=15)
    return d.to(torch.float16), q.to(torch.uint8)


def q4_1_codes(blocks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """blocks (n, 32) float32 -> (d, m (n, 1) float16, q (n, 32) uint8 in [0, 15]); x^ = d q + m."""
    return _q4_1_codes(_check_blocks(blocks))


def _q4_1_codes(blocks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    lo, hi = blocks.amin(1, keepdim=True), blocks.amax(1, keepdim=True)
    d = (hi - lo) / 15
    q = torch.trunc((blocks - lo) * _reciprocal(d) + 0.5).clamp(max=15)
    return d.to(torch.float16), lo.to(torch.float16), q.to(torch.uint8)


# ------------------------------------------------------------------------------------------ bytes


def _rows(x: torch.Tensor, block_bytes: torch.Tensor) -> torch.Tensor:
    """(n_blocks, bytes) -> (..., K / 32 * bytes), ggml's layout of a quantized tensor's rows."""
    return block_bytes.reshape(*x.shape[:-1], -1)


def _check_function(name: str, fn, what: str) -> None:
    if fn is not None and not callable(fn):
        raise TypeError(f"{name} must be a function {what} (or None for llmlab's), got {type(fn).__name__}")


def _given_codes(codes, blocks: torch.Tensor, kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(d (n, 1) float16, q (n, 32)) from a caller's ``codes(blocks)``, checked before they become bytes."""
    out = codes(blocks)
    n = blocks.shape[0]
    if not (isinstance(out, (tuple, list)) and len(out) == 2 and all(isinstance(t, torch.Tensor) for t in out)):
        raise TypeError(f"codes must return (d, q), two tensors, as {kind.lower()}_codes does; got "
                        f"{type(out).__name__}")
    d, q = out
    if tuple(d.shape) != (n, 1) or tuple(q.shape) != (n, BLOCK):
        raise ValueError(f"codes must return d ({n}, 1) and q ({n}, {BLOCK}) for {n} blocks, got {tuple(d.shape)} "
                         f"and {tuple(q.shape)}")
    if not d.is_floating_point() or q.is_complex() or q.dtype == torch.bool:
        raise TypeError(f"codes must return a float d and integer codes q, got dtypes {d.dtype} and {q.dtype}")
    if kind == "Q4_0" and q.numel() and (float(q.min()) < 0 or float(q.max()) > 15):
        raise ValueError(f"codes must return Q4_0 codes in [0, 15], got {float(q.min()):g} to {float(q.max()):g}")
    if kind == "Q8_0" and q.numel() and (float(q.min()) < -128 or float(q.max()) > 127):
        raise ValueError(f"codes must return Q8_0 codes in [-128, 127], got {float(q.min()):g} to {float(q.max()):g}")
    return d.to(torch.float16), q.to(torch.int8 if kind == "Q8_0" else torch.uint8)


def _given_packing(pack, q: torch.Tensor) -> torch.Tensor:
    """(n, 16) uint8 from a caller's ``pack(q)``, checked."""
    out = pack(q)
    if not isinstance(out, torch.Tensor) or out.dtype != torch.uint8:
        raise TypeError(f"pack must return a uint8 tensor (two codes per byte), got "
                        f"{getattr(out, 'dtype', type(out).__name__)}")
    if tuple(out.shape) != (q.shape[0], BLOCK // 2):
        raise ValueError(f"pack must return ({q.shape[0]}, {BLOCK // 2}) bytes for {q.shape[0]} blocks, got "
                         f"{tuple(out.shape)}")
    return out


def quantize_q8_0(x: torch.Tensor, codes=None) -> torch.Tensor:
    """x (..., K) -> uint8 (..., K / 32 * 34), equal to ``gguf.quants.quantize(x, Q8_0)``.

    ``codes``: the block step, blocks (n, 32) float32 -> (d (n, 1), q (n, 32)), as ``q8_0_codes`` (the default,
    None); notebook 09 passes the learner's, so the bytes are made by it."""
    _check_function("codes", codes, "blocks (n, 32) -> (d (n, 1), q (n, 32))")
    blocks = _nonempty_blocks(x)
    d, q = _q8_0_codes(blocks) if codes is None else _given_codes(codes, blocks, "Q8_0")
    return _rows(x, torch.cat([d.view(torch.uint8), q.view(torch.uint8)], 1))


def quantize_q4_0(x: torch.Tensor, codes=None, pack=None) -> torch.Tensor:
    """x (..., K) -> uint8 (..., K / 32 * 18), equal to ``gguf.quants.quantize(x, Q4_0)``.

    ``codes``: blocks (n, 32) float32 -> (d (n, 1), q (n, 32) in [0, 15]), as ``q4_0_codes``; ``pack``:
    q (n, 32) uint8 -> (n, 16) uint8, as ``pack_nibbles``. None (the default) uses llmlab's; notebook 09 passes
    the learner's."""
    _check_function("codes", codes, "blocks (n, 32) -> (d (n, 1), q (n, 32))")
    _check_function("pack", pack, "q (n, 32) -> bytes (n, 16)")
    blocks = _nonempty_blocks(x)
    d, q = _q4_0_codes(blocks) if codes is None else _given_codes(codes, blocks, "Q4_0")
    return _rows(x, torch.cat([d.view(torch.uint8), _pack_nibbles(q) if pack is None else _given_packing(pack, q)], 1))


def quantize_q4_1(x: torch.Tensor) -> torch.Tensor:
    """x (..., K) -> uint8 (..., K / 32 * 20), equal to ``gguf.quants.quantize(x, Q4_1)``."""
    d, m, q = _q4_1_codes(_nonempty_blocks(x))
    return _rows(x, torch.cat([d.view(torch.uint8), m.view(torch.uint8), _pack_nibbles(q)], 1))


def _blocks_of(data: torch.Tensor, kind: str) -> torch.Tensor:
    if not isinstance(data, torch.Tensor) or data.dtype != torch.uint8:
        raise TypeError(f"{kind} data must be a uint8 tensor, got {getattr(data, 'dtype', type(data).__name__)}")
    size = BLOCK_BYTES[kind]
    if data.ndim == 0 or data.shape[-1] % size:
        raise ValueError(f"{kind} rows are made of {size}-byte blocks: data's last dimension {data.shape[-1:]} "
                         "is not a multiple")
    if data.numel() == 0:
        raise ValueError(f"{kind} data is empty, shape {tuple(data.shape)}: there is nothing to dequantize")
    return data.reshape(-1, size)


def _values(data: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return x.reshape(*data.shape[:-1], -1)


def _check_scale(name: str, d, n: int) -> None:
    """d: a float tensor (n, 1) without NaN or inf, one scale (or minimum) per block."""
    validate.tensor(name, d, floating=True, finite=True)
    if tuple(d.shape) != (n, 1):
        raise ValueError(f"{name} must have shape (n, 1) = ({n}, 1), one per block of q, got {tuple(d.shape)}")


def _q8_0_values(d: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    return d.float() * q.float()


def q8_0_values(d: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """x^ = d q, float32 (n, 32). d (n, 1) float; q (n, 32) integer codes (int8: -128..127)."""
    _check_codes("q", q, BLOCK)
    _check_scale("d", d, q.shape[0])
    return _q8_0_values(d, q)


def _q4_0_values(d: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    return d.float() * (q.float() - 8)


def q4_0_values(d: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """x^ = d (q - 8), float32 (n, 32). d (n, 1) float; q (n, 32) integer codes in [0, 15]."""
    _check_codes("q", q, BLOCK, 15)
    _check_scale("d", d, q.shape[0])
    return _q4_0_values(d, q)


def _q4_1_values(d: torch.Tensor, m: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    return d.float() * q.float() + m.float()


def q4_1_values(d: torch.Tensor, m: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """x^ = d q + m, float32 (n, 32). d, m (n, 1) float; q (n, 32) integer codes in [0, 15]."""
    _check_codes("q", q, BLOCK, 15)
    _check_scale("d", d, q.shape[0])
    _check_scale("m", m, q.shape[0])
    return _q4_1_values(d, m, q)


def dequantize_q8_0(data: torch.Tensor) -> torch.Tensor:
    """uint8 (..., n * 34) -> float32 (..., n * 32)."""
    b = _blocks_of(data, "Q8_0")
    return _values(data, _q8_0_values(_fp16_from_bytes(b[:, :2]), b[:, 2:].contiguous().view(torch.int8)))


def dequantize_q4_0(data: torch.Tensor) -> torch.Tensor:
    """uint8 (..., n * 18) -> float32 (..., n * 32)."""
    b = _blocks_of(data, "Q4_0")
    return _values(data, _q4_0_values(_fp16_from_bytes(b[:, :2]), _unpack_nibbles(b[:, 2:])))


def dequantize_q4_1(data: torch.Tensor) -> torch.Tensor:
    """uint8 (..., n * 20) -> float32 (..., n * 32)."""
    b = _blocks_of(data, "Q4_1")
    return _values(data, _q4_1_values(_fp16_from_bytes(b[:, :2]), _fp16_from_bytes(b[:, 2:4]),
                                      _unpack_nibbles(b[:, 4:])))


QUANTIZE = {"Q8_0": quantize_q8_0, "Q4_0": quantize_q4_0, "Q4_1": quantize_q4_1}
DEQUANTIZE = {"Q8_0": dequantize_q8_0, "Q4_0": dequantize_q4_0, "Q4_1": dequantize_q4_1}
_CODES_AND_VALUES = {"Q8_0": (_q8_0_codes, _q8_0_values), "Q4_0": (_q4_0_codes, _q4_0_values),
                     "Q4_1": (_q4_1_codes, _q4_1_values)}


def fake_quantize(x: torch.Tensor, kind: str, codes=None) -> torch.Tensor:
    """x through a GGUF format and back (float32, x's shape): the weights a llama.cpp model computes with.
    Equal to ``DEQUANTIZE[kind](QUANTIZE[kind](x))``, computed from the codes without packing them.

    ``codes`` (Q8_0 and Q4_0 only): the block step, blocks (n, 32) float32 -> (d (n, 1), q (n, 32)), as
    ``q8_0_codes`` / ``q4_0_codes`` (the default, None); notebook 09 passes the learner's."""
    if kind not in QUANTIZE:
        raise ValueError(f"kind must be one of {sorted(QUANTIZE)}, got {kind!r}")
    _check_function("codes", codes, "blocks (n, 32) -> (d (n, 1), q (n, 32))")
    if codes is not None and kind == "Q4_1":
        raise ValueError("codes replaces the block step of Q8_0 or Q4_0; Q4_1 has three outputs (d, m, q): "
                         "give codes=None for it")
    own, values = _CODES_AND_VALUES[kind]
    blocks = _nonempty_blocks(x)
    return values(*(own(blocks) if codes is None else _given_codes(codes, blocks, kind))).reshape(x.shape)
