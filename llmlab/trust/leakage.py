"""Gradient leakage: a shared gradient can give the input back.

For one example through a linear layer y = W x + b, ∂L/∂W = (∂L/∂y) xᵀ and ∂L/∂b = ∂L/∂y: row i of ∂L/∂W is the
input x times ∂L/∂b_i. Any row with ∂L/∂b_i ≠ 0 returns x exactly. For a batch the rows mix the inputs, and
attacks such as "deep leakage from gradients" (Zhu et al., 2019) optimise dummy inputs until their gradient matches.
"""
from __future__ import annotations

import torch

from llmlab import validate


def leak_input(grad_weight: torch.Tensor, grad_bias: torch.Tensor) -> torch.Tensor:
    """x (in,) from one example's gradient of a linear layer: grad_weight (out, in), grad_bias (out,). Uses the
    row i with the largest |grad_bias[i]| (the first on a tie): x = grad_weight[i] / grad_bias[i]."""
    validate.tensor("grad_weight", grad_weight, ndim=2, floating=True, finite=True)
    validate.tensor("grad_bias", grad_bias, ndim=1, floating=True, finite=True)
    if not grad_weight.numel():
        raise ValueError(f"grad_weight is empty (shape {tuple(grad_weight.shape)}): need (out >= 1, in >= 1)")
    if grad_bias.shape[0] != grad_weight.shape[0]:
        raise ValueError(f"grad_bias must have {grad_weight.shape[0]} entries (one per output), got {grad_bias.shape[0]}")
    i = int(grad_bias.abs().argmax())
    if grad_bias[i] == 0:
        raise ValueError("grad_bias is all zeros: the gradient carries nothing about the input")
    return grad_weight[i] / grad_bias[i].to(grad_weight.dtype)
