"""Common mistakes in 09_quantization."""
import torch

from llmlab.grading import quantization as grade
from llmlab.quant import affine, gguf_blocks, gptq, smooth
from tests.mutants import mistake

per_channel = grade.check_per_channel.reference


def quantize_dequantize(x, scale, zero, bits):
    q = affine.quantize(x, scale, zero, bits, symmetric=False)
    return q, affine.dequantize(q, scale, zero)


def per_group(w, bits, group_size):
    N, K = w.shape
    Q = 2 ** (bits - 1) - 1
    groups = w.reshape(N, K // group_size, group_size)
    scale = groups.abs().amax(-1).clamp(min=1e-12) / Q
    return torch.round(groups / scale[..., None]).clamp(-Q, Q).reshape(N, K), scale


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
@mistake("check_scale_zero_point", "not clamped")
def szp_unclamped(lo, hi, bits):
    scale = ((hi - lo) / (2 ** bits - 1)).clamp(min=1e-12)
    return scale, -torch.round(lo / scale)


@mistake("check_scale_zero_point", "integer code")
def szp_not_rounded(lo, hi, bits):
    scale = ((hi - lo) / (2 ** bits - 1)).clamp(min=1e-12)
    return scale, (-lo / scale).clamp(0, 2 ** bits - 1)


@mistake("check_scale_zero_point", "2^b - 1 steps")
def szp_two_to_the_b(lo, hi, bits):
    scale = ((hi - lo) / 2 ** bits).clamp(min=1e-12)
    return scale, (-torch.round(lo / scale)).clamp(0, 2 ** bits - 1)


@mistake("check_scale_zero_point", "mind the sign")
def szp_sign(lo, hi, bits):
    scale = ((hi - lo) / (2 ** bits - 1)).clamp(min=1e-12)
    return scale, torch.round(lo / scale).clamp(0, 2 ** bits - 1)


# quantize_dequantize
@mistake("check_quantize_dequantize", "clamp the codes")
def qd_no_clamp(x, scale, zero, bits):
    q = torch.round(x / scale) + zero
    return q, scale * (q - zero)


@mistake("check_quantize_dequantize", "do not truncate")
def qd_floor(x, scale, zero, bits):
    q = (torch.floor(x / scale) + zero).clamp(0, 2 ** bits - 1)
    return q, scale * (q - zero)


@mistake("check_quantize_dequantize", "subtract it before scaling")
def qd_add_zero_after_scaling(x, scale, zero, bits):
    q = affine.quantize(x, scale, zero, bits, symmetric=False)
    return q, q * scale + zero


# per_channel
@mistake("check_per_channel", "per-tensor")
def pc_per_tensor(w, bits):
    scale = (w.abs().max() / (2 ** (bits - 1) - 1)).expand(w.shape[0])
    return torch.round(w / scale[:, None]).clamp(-(2 ** (bits - 1) - 1), 2 ** (bits - 1) - 1), scale


@mistake("check_per_channel", "not 127.5")
def pc_127_5(w, bits):
    scale = w.abs().amax(1) / (2 ** (bits - 1) - 0.5)
    return torch.round(w / scale[:, None]), scale


@mistake("check_per_channel", "not 128")
def pc_128(w, bits):
    scale = w.abs().amax(1) / 2 ** (bits - 1)
    return torch.round(w / scale[:, None]), scale


@mistake("check_per_channel", "per *output* channel")
def pc_input_axis(w, bits):
    scale = w.abs().amax(0) / (2 ** (bits - 1) - 1)
    return torch.round(w / scale), scale


@mistake("check_per_channel", "absolute value")
def pc_no_abs(w, bits):
    scale = w.amax(1) / (2 ** (bits - 1) - 1)
    return torch.round(w / scale[:, None]).clamp(-(2 ** (bits - 1) - 1), 2 ** (bits - 1) - 1), scale


# per_group
@mistake("check_per_group", "consecutive")
def pg_strided_groups(w, bits, group_size):
    N, K = w.shape
    scale = w.reshape(N, group_size, K // group_size).abs().amax(1) / (2 ** (bits - 1) - 1)
    return torch.round(w / scale.repeat(1, group_size)), scale


@mistake("check_per_group", "one scale per group")
def pg_per_channel(w, bits, group_size):
    scale = w.abs().amax(1, keepdim=True) / (2 ** (bits - 1) - 1)
    return torch.round(w / scale), scale.expand(w.shape[0], w.shape[1] // group_size)


@mistake("check_per_group", "broadcast")
def pg_no_broadcast(w, bits, group_size):
    N, K = w.shape
    scale = w.reshape(N, K // group_size, group_size).abs().amax(-1) / (2 ** (bits - 1) - 1)
    return torch.round(w / scale.repeat(1, group_size)).clamp(-7, 7), scale


# q8_0_block
@mistake("check_q8_0_block", "halves away from zero")
def q8_round_half_even(blocks):
    d = blocks.abs().amax(1, keepdim=True) / 127
    q = torch.round(blocks * torch.where(d == 0, 0, 1 / d))
    return d.half(), q.to(torch.int8)


@mistake("check_q8_0_block", "not 127.5")
def q8_127_5(blocks):
    d = blocks.abs().amax(1, keepdim=True) / 127.5
    q = gguf_blocks.round_half_away(blocks * torch.where(d == 0, 0, 1 / d))
    return d.half(), q.to(torch.int8)


@mistake("check_q8_0_block", "float32 scale")
def q8_codes_from_fp16_scale(blocks):
    d = (blocks.abs().amax(1, keepdim=True) / 127).half()
    q = gguf_blocks.round_half_away(blocks * torch.where(d == 0, 0, 1 / d.float()))
    return d, q.to(torch.int8)


# q4_0_block
@mistake("check_q4_0_block", "sign trick")
def q4_positive_scale(blocks):
    d = blocks.abs().amax(1, keepdim=True) / 8
    q = torch.trunc(blocks * torch.where(d == 0, 0, 1 / d) + 8.5).clamp(max=15)
    return d.half(), q.to(torch.uint8)


@mistake("check_q4_0_block", "rounds halves up")
def q4_round_half_even(blocks):
    extreme = blocks.gather(1, blocks.abs().argmax(1, keepdim=True))
    d = extreme / -8
    q = (torch.round(blocks * torch.where(d == 0, 0, 1 / d)) + 8).clamp(0, 15)
    return d.half(), q.to(torch.uint8)


@mistake("check_q4_0_block", "at most 15")
def q4_no_clamp(blocks):
    extreme = blocks.gather(1, blocks.abs().argmax(1, keepdim=True))
    d = extreme / -8
    q = torch.trunc(blocks * torch.where(d == 0, 0, 1 / d) + 8.5)
    return d.half(), q.to(torch.uint8)


# pack_nibbles
@mistake("check_pack_nibbles", "j + 16")
def pack_adjacent(q):
    return q[:, 0::2] | (q[:, 1::2] << 4)


@mistake("check_pack_nibbles", "low nibble")
def pack_swapped(q):
    return q[:, 16:] | (q[:, :16] << 4)


# gptq_update
@mistake("check_gptq_update", "without error propagation")
def gptq_no_propagation(W, U, i, q):
    return (W[:, i] - q) / U[i, i]


@mistake("check_gptq_update", "divide the rounding error")
def gptq_not_divided(W, U, i, q):
    err = W[:, i] - q
    W[:, i + 1:] -= torch.outer(err, U[i, i + 1:])
    return err


@mistake("check_gptq_update", "subtract the update")
def gptq_wrong_sign(W, U, i, q):
    err = (W[:, i] - q) / U[i, i]
    W[:, i + 1:] += torch.outer(err, U[i, i + 1:])
    return err


# smooth_scales
@mistake("check_smooth_scales", "alpha goes with the activations")
def smooth_swapped(act, w, alpha):
    return w.pow(alpha) / act.pow(1 - alpha)


@mistake("check_smooth_scales", "a ratio")
def smooth_product(act, w, alpha):
    return act.pow(alpha) * w.pow(1 - alpha)


@mistake("check_smooth_scales", "1 - alpha")
def smooth_same_exponent(act, w, alpha):
    return act.pow(alpha) / w.pow(alpha)


# mixed_int8
@mistake("check_mixed_int8", "not tokens")
def mixed_by_token(x, W, threshold):
    rows = (x.abs() > threshold).any(1)
    y = torch.empty(x.shape[0], W.shape[0])
    y[rows], y[~rows] = x[rows] @ W.T, smooth.w8a8_linear(x[~rows], W)
    return y


@mistake("check_mixed_int8", "negative value")
def mixed_signed(x, W, threshold):
    cols = (x > threshold).any(0)
    return x[:, cols] @ W[:, cols].T + smooth.w8a8_linear(x[:, ~cols], W[:, ~cols])


@mistake("check_mixed_int8", "plain W8A8")
def mixed_all_int8(x, W, threshold):
    return smooth.w8a8_linear(x, W)


@mistake("check_mixed_int8", "computed in float")
def mixed_outliers_quantized(x, W, threshold):
    cols = (x.abs() > threshold).any(0)
    return smooth.w8a8_linear(x[:, cols], W[:, cols]) + smooth.w8a8_linear(x[:, ~cols], W[:, ~cols])


# ---------------------------------------------------------------- right on the example, wrong in general

@mistake("check_scale_zero_point", "use the bits argument", kind="overfit")
def szp_two_widths(lo, hi, bits):
    qmax = 255 if bits == 8 else 15  # the two widths the notebook shows
    scale = ((hi - lo) / qmax).clamp(min=1e-12)
    return scale, (-torch.round(lo / scale)).clamp(0, qmax)


@mistake("check_scale_zero_point", "halves to the even code", kind="overfit")
def szp_round_half_up(lo, hi, bits):
    qmax = 2 ** bits - 1
    scale = ((hi - lo) / qmax).clamp(min=1e-12)
    return scale, torch.floor(-lo / scale + 0.5).clamp(0, qmax)


@mistake("check_quantize_dequantize", "use the bits argument", kind="overfit")
def qd_four_bits(x, scale, zero, bits):
    q = (torch.round(x / scale) + zero).clamp(0, 15)
    return q, scale * (q - zero)


@mistake("check_quantize_dequantize", "halves to the even code", kind="overfit")
def qd_round_half_up(x, scale, zero, bits):
    q = (torch.floor(x / scale + 0.5) + zero).clamp(0, 2 ** bits - 1)
    return q, scale * (q - zero)


@mistake("check_per_channel", "use the bits argument", kind="overfit")
def pc_two_widths(w, bits):
    Q = 127 if bits == 8 else 7
    scale = w.abs().amax(1).clamp(min=1e-12) / Q
    return torch.round(w / scale[:, None]).clamp(-Q, Q), scale


@mistake("check_per_channel", "on a hidden case (", kind="overfit")
def pc_zero_row_nan(w, bits):
    Q = 2 ** (bits - 1) - 1
    scale = w.abs().amax(1) / Q  # an all-zero row: 0 / 0
    return torch.round(w / scale[:, None]).clamp(-Q, Q), scale


@mistake("check_per_group", "use the bits argument", kind="overfit")
def pg_four_bits(w, bits, group_size):
    N, K = w.shape
    groups = w.reshape(N, K // group_size, group_size)
    scale = groups.abs().amax(-1).clamp(min=1e-12) / 7
    return torch.round(groups / scale[..., None]).clamp(-7, 7).reshape(N, K), scale


@mistake("check_q8_0_block", "x * (1 / d)", kind="overfit")
def q8_divide(blocks):
    d = blocks.abs().amax(1, keepdim=True) / 127
    q = gguf_blocks.round_half_away(torch.where(d == 0, 0, blocks / d))
    return d.half(), q.to(torch.int8)


@mistake("check_q4_0_block", "x * (1 / d)", kind="overfit")
def q4_divide(blocks):
    extreme = blocks.gather(1, blocks.abs().argmax(1, keepdim=True))
    d = extreme / -8
    q = torch.trunc(torch.where(d == 0, 0, blocks / d) + 8.5).clamp(max=15)
    return d.half(), q.to(torch.uint8)


@mistake("check_q4_0_block", "comes first in the block", kind="overfit")
def q4_positive_on_tie(blocks):
    hi, lo = blocks.amax(1, keepdim=True), blocks.amin(1, keepdim=True)
    d = torch.where(hi >= -lo, hi, lo) / -8
    q = torch.trunc(blocks * torch.where(d == 0, 0, 1 / d) + 8.5).clamp(max=15)
    return d.half(), q.to(torch.uint8)


@mistake("check_q4_0_block", "use 1/d = 0 there")
def q4_zero_block_nan(blocks):
    extreme = blocks.gather(1, blocks.abs().argmax(1, keepdim=True))
    d = extreme / -8
    q = torch.trunc(blocks * (1 / d) + 8.5).clamp(max=15)
    return d.half(), q.to(torch.uint8)


@mistake("check_pack_nibbles", "on a hidden case (", kind="overfit")
def pack_fixed_rows(q):
    out = torch.zeros(50, 16, dtype=torch.uint8)  # the example's 50 blocks
    n = min(50, q.shape[0])
    out[:n] = q[:n, :16] | (q[:n, 16:] << 4)
    return out


@mistake("check_gptq_update", "whatever the block's width", kind="overfit")
def gptq_fixed_width(W, U, i, q):
    err = (W[:, i] - q) / U[i, i]
    for j in range(i + 1, min(48, W.shape[1])):  # the example's block of 48 columns
        W[:, j] -= err * U[i, j]
    return err


@mistake("check_smooth_scales", "on a hidden case (", kind="overfit")
def smooth_fixed_width(act, w, alpha):
    s = torch.empty(64)
    for j in range(64):
        s[j] = act[j] ** alpha / w[j] ** (1 - alpha)
    return s


@mistake("check_mixed_int8", "not a fixed 6", kind="overfit")
def mixed_fixed_threshold(x, W, threshold):
    cols = (x.abs() > 6).any(0)
    return x[:, cols] @ W[:, cols].T + smooth.w8a8_linear(x[:, ~cols], W[:, ~cols])


# ---------------------------------------------------------------- changing the caller's tensors

@mistake("check_scale_zero_point", "leave the inputs as they are", kind="inplace")
def szp_range_in_place(lo, hi, bits):
    hi -= lo  # the width of the range
    scale = (hi / (2 ** bits - 1)).clamp(min=1e-12)
    return scale, (-torch.round(lo / scale)).clamp(0, 2 ** bits - 1)


@mistake("check_quantize_dequantize", "leave the inputs as they are", kind="inplace")
def qd_divide_in_place(x, scale, zero, bits):
    x /= scale
    q = (torch.round(x) + zero).clamp(0, 2 ** bits - 1)
    return q, scale * (q - zero)


@mistake("check_per_channel", "leave the inputs as they are", kind="inplace")
def pc_divide_in_place(w, bits):
    Q = 2 ** (bits - 1) - 1
    scale = w.abs().amax(1).clamp(min=1e-12) / Q
    w /= scale[:, None]
    return w.round_().clamp_(-Q, Q), scale


@mistake("check_per_group", "leave the inputs as they are", kind="inplace")
def pg_divide_view_in_place(w, bits, group_size):
    N, K = w.shape
    Q = 2 ** (bits - 1) - 1
    groups = w.view(N, K // group_size, group_size)
    scale = groups.abs().amax(-1).clamp(min=1e-12) / Q
    groups /= scale[..., None]
    return torch.round(groups).clamp(-Q, Q).reshape(N, K), scale


@mistake("check_q8_0_block", "leave the inputs as they are", kind="inplace")
def q8_scale_in_place(blocks):
    d = blocks.abs().amax(1, keepdim=True) / 127
    blocks *= torch.where(d == 0, 0, 1 / d)
    return d.half(), gguf_blocks.round_half_away(blocks).to(torch.int8)


@mistake("check_q4_0_block", "leave the inputs as they are", kind="inplace")
def q4_shift_in_place(blocks):
    extreme = blocks.gather(1, blocks.abs().argmax(1, keepdim=True))
    d = extreme / -8
    blocks.mul_(torch.where(d == 0, 0, 1 / d)).add_(8.5)
    return d.half(), torch.trunc(blocks).clamp(max=15).to(torch.uint8)


@mistake("check_pack_nibbles", "leave the inputs as they are", kind="inplace")
def pack_shift_in_place(q):
    q[:, 16:] <<= 4
    return q[:, :16] | q[:, 16:]


@mistake("check_gptq_update", "only the columns after i", kind="inplace")
def gptq_updates_column_i(W, U, i, q):
    err = (W[:, i] - q) / U[i, i]
    W[:, i:] -= torch.outer(err, U[i, i:])
    return err


@mistake("check_smooth_scales", "leave the inputs as they are", kind="inplace")
def smooth_pow_in_place(act, w, alpha):
    return act.pow_(alpha) / w.pow(1 - alpha)


@mistake("check_mixed_int8", "leave the inputs as they are", kind="inplace")
def mixed_zero_outliers_in_place(x, W, threshold):
    cols = (x.abs() > threshold).any(0)
    y = x[:, cols] @ W[:, cols].T
    x[:, cols] = 0
    return y + smooth.w8a8_linear(x[:, ~cols], W[:, ~cols])


# ---------------------------------------------------------------- the input's dtype lost

@mistake("check_scale_zero_point", "dtype", kind="dtype")
def szp_float_zero(lo, hi, bits):
    scale = ((hi - lo) / (2 ** bits - 1)).clamp(min=1e-12)
    return scale, (-torch.round(lo / scale)).clamp(0, 2 ** bits - 1).float()  # "as floats"


@mistake("check_quantize_dequantize", "dtype", kind="dtype")
def qd_float32(x, scale, zero, bits):
    x = x.float()
    q = (torch.round(x / scale) + zero).clamp(0, 2 ** bits - 1)
    return q, (scale * (q - zero)).float()


@mistake("check_per_channel", "dtype", kind="dtype")
def pc_float32(w, bits):
    return per_channel(w.float(), bits)


@mistake("check_per_group", "dtype", kind="dtype")
def pg_float32(w, bits, group_size):
    return per_group(w.float(), bits, group_size)


@mistake("check_q8_0_block", "d.to(torch.float16)", kind="dtype")
def q8_float32_scale(blocks):
    d, q = gguf_blocks.q8_0_codes(blocks)
    return d.float(), q


@mistake("check_q4_0_block", "q.to(torch.uint8)", kind="dtype")
def q4_int64_codes(blocks):
    d, q = gguf_blocks.q4_0_codes(blocks)
    return d, q.long()


@mistake("check_pack_nibbles", "keep the codes in torch.uint8", kind="dtype")
def pack_long(q):
    return q[:, :16].long() | (q[:, 16:].long() << 4)


@mistake("check_gptq_update", "dtype", kind="dtype")
def gptq_float32(W, U, i, q):
    err = ((W[:, i] - q) / U[i, i]).float()
    W[:, i + 1:] -= torch.outer(err, U[i, i + 1:].float()).to(W.dtype)
    return err


@mistake("check_smooth_scales", "dtype", kind="dtype")
def smooth_float32(act, w, alpha):
    return smooth.smooth_scales(act.float(), w.float(), alpha)


@mistake("check_mixed_int8", "dtype", kind="dtype")
def mixed_float32(x, W, threshold):
    return smooth.mixed_int8_linear(x.float(), W.float(), threshold)


@mistake("check_mixed_int8", "strictly")
def mixed_int8_at_least_threshold(x, W, threshold):
    out = (x.abs() >= threshold).any(0)
    return x[:, out] @ W[:, out].T + smooth.w8a8_linear(x[:, ~out], W[:, ~out])


@mistake("check_scale_zero_point", "do not add 1e-12")
def szp_plus_epsilon(lo, hi, bits):
    qmax = 2 ** bits - 1
    scale = (hi - lo) / qmax + 1e-12
    return scale, (-torch.round(lo / scale)).clamp(0, qmax)


@mistake("check_per_channel", "not 0")
def per_channel_no_clamp(w, bits):
    Q = 2 ** (bits - 1) - 1
    scale = w.abs().amax(1) / Q
    return torch.round(w / scale[:, None]).nan_to_num(0.0).clamp(-Q, Q), scale


@mistake("check_smooth_scales", "clamp both maxima", kind="overfit")
def smooth_no_clamp(act_absmax, weight_absmax, alpha):
    return act_absmax.pow(alpha) / weight_absmax.pow(1 - alpha)
