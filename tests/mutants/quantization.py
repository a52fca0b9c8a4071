"""Common mistakes in 09_quantization."""
import torch

from llmlab.quant import affine, gguf_blocks, gptq, smooth


def quantize_dequantize(x, scale, zero, bits):
    q = affine.quantize(x, scale, zero, bits, symmetric=False)
    return q, affine.dequantize(q, scale, zero)


def per_channel(w, bits):
    qt = affine.quantize_weight(w, bits, granularity="channel")
    return qt.q, qt.scale


def per_group(w, bits, group_size):
    qt = affine.quantize_weight(w, bits, granularity="group", group_size=group_size)
    return qt.q, qt.scale.reshape(w.shape[0], -1)


def q8_0_block(blocks):
    return gguf_blocks.q8_0_codes(blocks)


def q4_0_block(blocks):
    return gguf_blocks.q4_0_codes(blocks)


REFERENCE = {
    "check_scale_zero_point": affine.scale_zero_point,
    "check_quantize_dequantize": quantize_dequantize,
    "check_per_channel": per_channel,
    "check_per_group": per_group,
    "check_q8_0_block": q8_0_block,
    "check_q4_0_block": q4_0_block,
    "check_pack_nibbles": gguf_blocks.pack_nibbles,
    "check_gptq_update": gptq.gptq_column_update,
    "check_smooth_scales": smooth.smooth_scales,
    "check_mixed_int8": smooth.mixed_int8_linear,
}


# scale_zero_point
def szp_unclamped(lo, hi, bits):
    scale = ((hi - lo) / (2 ** bits - 1)).clamp(min=1e-12)
    return scale, -torch.round(lo / scale)


def szp_not_rounded(lo, hi, bits):
    scale = ((hi - lo) / (2 ** bits - 1)).clamp(min=1e-12)
    return scale, (-lo / scale).clamp(0, 2 ** bits - 1)


def szp_two_to_the_b(lo, hi, bits):
    scale = ((hi - lo) / 2 ** bits).clamp(min=1e-12)
    return scale, (-torch.round(lo / scale)).clamp(0, 2 ** bits - 1)


def szp_sign(lo, hi, bits):
    scale = ((hi - lo) / (2 ** bits - 1)).clamp(min=1e-12)
    return scale, torch.round(lo / scale).clamp(0, 2 ** bits - 1)


# quantize_dequantize
def qd_no_clamp(x, scale, zero, bits):
    q = torch.round(x / scale) + zero
    return q, scale * (q - zero)


def qd_floor(x, scale, zero, bits):
    q = (torch.floor(x / scale) + zero).clamp(0, 2 ** bits - 1)
    return q, scale * (q - zero)


def qd_add_zero_after_scaling(x, scale, zero, bits):
    q = affine.quantize(x, scale, zero, bits, symmetric=False)
    return q, q * scale + zero


# per_channel
def pc_per_tensor(w, bits):
    scale = (w.abs().max() / (2 ** (bits - 1) - 1)).expand(w.shape[0])
    return torch.round(w / scale[:, None]).clamp(-(2 ** (bits - 1) - 1), 2 ** (bits - 1) - 1), scale


def pc_127_5(w, bits):
    scale = w.abs().amax(1) / (2 ** (bits - 1) - 0.5)
    return torch.round(w / scale[:, None]), scale


def pc_128(w, bits):
    scale = w.abs().amax(1) / 2 ** (bits - 1)
    return torch.round(w / scale[:, None]), scale


def pc_input_axis(w, bits):
    scale = w.abs().amax(0) / (2 ** (bits - 1) - 1)
    return torch.round(w / scale), scale


def pc_no_abs(w, bits):
    scale = w.amax(1) / (2 ** (bits - 1) - 1)
    return torch.round(w / scale[:, None]).clamp(-(2 ** (bits - 1) - 1), 2 ** (bits - 1) - 1), scale


# per_group
def pg_strided_groups(w, bits, group_size):
    N, K = w.shape
    scale = w.reshape(N, group_size, K // group_size).abs().amax(1) / (2 ** (bits - 1) - 1)
    return torch.round(w / scale.repeat(1, group_size)), scale


def pg_per_channel(w, bits, group_size):
    scale = w.abs().amax(1, keepdim=True) / (2 ** (bits - 1) - 1)
    return torch.round(w / scale), scale.expand(w.shape[0], w.shape[1] // group_size)


def pg_no_broadcast(w, bits, group_size):
    N, K = w.shape
    scale = w.reshape(N, K // group_size, group_size).abs().amax(-1) / (2 ** (bits - 1) - 1)
    return torch.round(w / scale.repeat(1, group_size)).clamp(-7, 7), scale


# q8_0_block
def q8_round_half_even(blocks):
    d = blocks.abs().amax(1, keepdim=True) / 127
    q = torch.round(blocks * torch.where(d == 0, 0, 1 / d))
    return d.half(), q.to(torch.int8)


def q8_127_5(blocks):
    d = blocks.abs().amax(1, keepdim=True) / 127.5
    q = gguf_blocks.round_half_away(blocks * torch.where(d == 0, 0, 1 / d))
    return d.half(), q.to(torch.int8)


def q8_codes_from_fp16_scale(blocks):
    d = (blocks.abs().amax(1, keepdim=True) / 127).half()
    q = gguf_blocks.round_half_away(blocks * torch.where(d == 0, 0, 1 / d.float()))
    return d, q.to(torch.int8)


# q4_0_block
def q4_positive_scale(blocks):
    d = blocks.abs().amax(1, keepdim=True) / 8
    q = torch.trunc(blocks * torch.where(d == 0, 0, 1 / d) + 8.5).clamp(max=15)
    return d.half(), q.to(torch.uint8)


def q4_round_half_even(blocks):
    extreme = blocks.gather(1, blocks.abs().argmax(1, keepdim=True))
    d = extreme / -8
    q = (torch.round(blocks * torch.where(d == 0, 0, 1 / d)) + 8).clamp(0, 15)
    return d.half(), q.to(torch.uint8)


def q4_no_clamp(blocks):
    extreme = blocks.gather(1, blocks.abs().argmax(1, keepdim=True))
    d = extreme / -8
    q = torch.trunc(blocks * torch.where(d == 0, 0, 1 / d) + 8.5)
    return d.half(), q.to(torch.uint8)


# pack_nibbles
def pack_adjacent(q):
    return q[:, 0::2] | (q[:, 1::2] << 4)


def pack_swapped(q):
    return q[:, 16:] | (q[:, :16] << 4)


# gptq_update
def gptq_no_propagation(W, U, i, q):
    return (W[:, i] - q) / U[i, i]


def gptq_not_divided(W, U, i, q):
    err = W[:, i] - q
    W[:, i + 1:] -= torch.outer(err, U[i, i + 1:])
    return err


def gptq_wrong_sign(W, U, i, q):
    err = (W[:, i] - q) / U[i, i]
    W[:, i + 1:] += torch.outer(err, U[i, i + 1:])
    return err


# smooth_scales
def smooth_swapped(act, w, alpha):
    return w.pow(alpha) / act.pow(1 - alpha)


def smooth_product(act, w, alpha):
    return act.pow(alpha) * w.pow(1 - alpha)


def smooth_same_exponent(act, w, alpha):
    return act.pow(alpha) / w.pow(alpha)


# mixed_int8
def mixed_by_token(x, W, threshold):
    rows = (x.abs() > threshold).any(1)
    y = torch.empty(x.shape[0], W.shape[0])
    y[rows], y[~rows] = x[rows] @ W.T, smooth.w8a8_linear(x[~rows], W)
    return y


def mixed_signed(x, W, threshold):
    cols = (x > threshold).any(0)
    return x[:, cols] @ W[:, cols].T + smooth.w8a8_linear(x[:, ~cols], W[:, ~cols])


def mixed_all_int8(x, W, threshold):
    return smooth.w8a8_linear(x, W)


def mixed_outliers_quantized(x, W, threshold):
    cols = (x.abs() > threshold).any(0)
    return smooth.w8a8_linear(x[:, cols], W[:, cols]) + smooth.w8a8_linear(x[:, ~cols], W[:, ~cols])


MUTANTS = [
    ("check_scale_zero_point", szp_unclamped, "not clamped"),
    ("check_scale_zero_point", szp_not_rounded, "integer code"),
    ("check_scale_zero_point", szp_two_to_the_b, "2^b - 1 steps"),
    ("check_scale_zero_point", szp_sign, "mind the sign"),
    ("check_quantize_dequantize", qd_no_clamp, "clamp the codes"),
    ("check_quantize_dequantize", qd_floor, "do not truncate"),
    ("check_quantize_dequantize", qd_add_zero_after_scaling, "subtract it before scaling"),
    ("check_per_channel", pc_per_tensor, "per-tensor"),
    ("check_per_channel", pc_127_5, "not 127.5"),
    ("check_per_channel", pc_128, "not 128"),
    ("check_per_channel", pc_input_axis, "per *output* channel"),
    ("check_per_channel", pc_no_abs, "absolute value"),
    ("check_per_group", pg_strided_groups, "consecutive"),
    ("check_per_group", pg_per_channel, "one scale per group"),
    ("check_per_group", pg_no_broadcast, "broadcast"),
    ("check_q8_0_block", q8_round_half_even, "halves away from zero"),
    ("check_q8_0_block", q8_127_5, "not 127.5"),
    ("check_q8_0_block", q8_codes_from_fp16_scale, "float32 scale"),
    ("check_q4_0_block", q4_positive_scale, "sign trick"),
    ("check_q4_0_block", q4_round_half_even, "rounds halves up"),
    ("check_q4_0_block", q4_no_clamp, "at most 15"),
    ("check_pack_nibbles", pack_adjacent, "j + 16"),
    ("check_pack_nibbles", pack_swapped, "low nibble"),
    ("check_gptq_update", gptq_no_propagation, "without error propagation"),
    ("check_gptq_update", gptq_not_divided, "divide the rounding error"),
    ("check_gptq_update", gptq_wrong_sign, "subtract the update"),
    ("check_smooth_scales", smooth_swapped, "alpha goes with the activations"),
    ("check_smooth_scales", smooth_product, "a ratio"),
    ("check_smooth_scales", smooth_same_exponent, "1 - alpha"),
    ("check_mixed_int8", mixed_by_token, "not tokens"),
    ("check_mixed_int8", mixed_signed, "negative value"),
    ("check_mixed_int8", mixed_all_int8, "plain W8A8"),
    ("check_mixed_int8", mixed_outliers_quantized, "computed in float"),
]
