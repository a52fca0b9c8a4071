"""The LSTM (Hochreiter & Schmidhuber 1997), step by step, with torch.nn.LSTM's weights and gate order.

One step reads the input x_t (B, I) and the state (h, c), both (B, H):

    gates = x_t W_ihᵀ + b_ih + h W_hhᵀ + b_hh          (B, 4H), cut into four (B, H) blocks in the order i, f, g, o
    i = σ(gates_i)   input gate        f = σ(gates_f)   forget gate
    g = tanh(gates_g) candidate cell    o = σ(gates_o)   output gate
    c' = f ⊙ c + i ⊙ g                  the cell: a running sum, gated
    h' = o ⊙ tanh(c')                   the output, and the state the next step reads

W_ih (4H, I), W_hh (4H, H), b_ih and b_hh (4H,) are torch.nn.LSTM's ``weight_ih_l0``, ``weight_hh_l0``,
``bias_ih_l0``, ``bias_hh_l0``: two biases whose sum is what counts (cuDNN's layout). The cell's additive path
c' = f ⊙ c + ... is what lets a gradient cross many steps, but everything the model remembers of the past must
pass through this one (B, H) state, one step at a time: a token T steps back is T steps of the recurrence away,
where attention reaches it in one.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn

from llmlab import validate


def _check_weights(I: int, W_ih: torch.Tensor, W_hh: torch.Tensor, b_ih: torch.Tensor, b_hh: torch.Tensor) -> int:
    validate.tensor("W_hh", W_hh, ndim=2, floating=True)
    H = W_hh.shape[1]
    if H == 0 or W_hh.shape[0] != 4 * H:
        raise ValueError(f"W_hh must have shape (4H, H) with H >= 1, got {tuple(W_hh.shape)}")
    validate.tensor("W_ih", W_ih, ndim=2, floating=True)
    if W_ih.shape != (4 * H, I):
        raise ValueError(f"W_ih must have shape (4H, I) = ({4 * H}, {I}), got {tuple(W_ih.shape)}")
    for name, b in (("b_ih", b_ih), ("b_hh", b_hh)):
        validate.tensor(name, b, ndim=1, floating=True)
        if b.shape != (4 * H,):
            raise ValueError(f"{name} must have shape (4H,) = ({4 * H},), got {tuple(b.shape)}")
    return H


def _check_state(B: int, H: int, h: torch.Tensor, c: torch.Tensor, names=("h", "c")) -> None:
    for name, t in zip(names, (h, c)):
        validate.tensor(name, t, ndim=2, floating=True)
        if t.shape != (B, H):
            raise ValueError(f"{name} must have shape (B, H) = ({B}, {H}), got {tuple(t.shape)}")


def lstm_cell(x: torch.Tensor, h: torch.Tensor, c: torch.Tensor, W_ih: torch.Tensor, W_hh: torch.Tensor,
              b_ih: torch.Tensor, b_hh: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One LSTM step: x (B, I), h and c (B, H) -> the new (h, c), each (B, H), in x's dtype."""
    validate.tensor("x", x, ndim=2, floating=True)
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"x must have shape (B, I) with B, I >= 1, got {tuple(x.shape)}")
    H = _check_weights(x.shape[1], W_ih, W_hh, b_ih, b_hh)
    _check_state(x.shape[0], H, h, c)
    return _cell(x, h, c, W_ih, W_hh, b_ih, b_hh)


def _cell(x, h, c, W_ih, W_hh, b_ih, b_hh):
    """lstm_cell without the argument checks: the recurrence calls it once per time step."""
    gates = x @ W_ih.T + b_ih + h @ W_hh.T + b_hh
    i, f, g, o = gates.chunk(4, dim=-1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


def lstm_forward(x: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor, W_ih: torch.Tensor, W_hh: torch.Tensor,
                 b_ih: torch.Tensor, b_hh: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """The LSTM over a sequence, batch first: x (B, T, I), h0 and c0 (B, H) -> out (B, T, H), the h of every
    step, and the final (h_T, c_T); ``torch.nn.LSTM(I, H, batch_first=True)`` with the same weights."""
    validate.tensor("x", x, ndim=3, floating=True)
    if 0 in x.shape:
        raise ValueError(f"x must have shape (B, T, I) with B, T, I >= 1, got {tuple(x.shape)}")
    H = _check_weights(x.shape[2], W_ih, W_hh, b_ih, b_hh)
    _check_state(x.shape[0], H, h0, c0, ("h0", "c0"))
    h, c, outs = h0, c0, []
    for t in range(x.shape[1]):
        h, c = _cell(x[:, t], h, c, W_ih, W_hh, b_ih, b_hh)
        outs.append(h)
    return torch.stack(outs, dim=1), (h, c)


def lstm_forward_fused(
    x: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor, W_ih: torch.Tensor, W_hh: torch.Tensor, b_ih: torch.Tensor,
    b_hh: torch.Tensor,
) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """``lstm_forward`` by PyTorch's fused kernel (``torch.lstm``, what torch.nn.LSTM runs): same result, faster."""
    validate.tensor("x", x, ndim=3, floating=True)
    if 0 in x.shape:
        raise ValueError(f"x must have shape (B, T, I) with B, T, I >= 1, got {tuple(x.shape)}")
    H = _check_weights(x.shape[2], W_ih, W_hh, b_ih, b_hh)
    _check_state(x.shape[0], H, h0, c0, ("h0", "c0"))
    out, h, c = torch.lstm(x, (h0[None], c0[None]), [W_ih, W_hh, b_ih, b_hh], True, 1, 0.0, False, False, True)
    return out, (h[0], c[0])


LSTMForward = Callable[..., tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]]


class LSTMLM(nn.Module):
    """A one-layer LSTM language model: embedding (V, E) -> LSTM (hidden H) -> linear head (V); idx (B, T) ->
    logits (B, T, V). ``forward_fn`` runs the recurrence (``lstm_forward``, a learner's version with its
    signature, or ``lstm_forward_fused``). The weights start as torch.nn.LSTM's, U(-1/√H, 1/√H)."""

    def __init__(self, vocab_size: int, embed_dim: int, hidden: int, forward_fn: LSTMForward = lstm_forward):
        super().__init__()
        vocab_size = validate.size("vocab_size", vocab_size)
        embed_dim, hidden = validate.size("embed_dim", embed_dim), validate.size("hidden", hidden)
        if not callable(forward_fn):
            raise TypeError(f"forward_fn must be a function with lstm_forward's signature, got "
                            f"{type(forward_fn).__name__}")
        self.vocab_size, self.hidden, self.forward_fn = vocab_size, hidden, forward_fn
        self.embed = nn.Embedding(vocab_size, embed_dim)
        bound = hidden ** -0.5
        self.W_ih = nn.Parameter(torch.empty(4 * hidden, embed_dim).uniform_(-bound, bound))
        self.W_hh = nn.Parameter(torch.empty(4 * hidden, hidden).uniform_(-bound, bound))
        self.b_ih = nn.Parameter(torch.empty(4 * hidden).uniform_(-bound, bound))
        self.b_hh = nn.Parameter(torch.empty(4 * hidden).uniform_(-bound, bound))
        self.head = nn.Linear(hidden, vocab_size)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        validate.tensor("idx", idx, ndim=2)
        if idx.dtype.is_floating_point or idx.dtype.is_complex or idx.dtype == torch.bool:
            raise TypeError(f"idx must hold integer token ids, got {idx.dtype}")
        if 0 in idx.shape or int(idx.min()) < 0 or int(idx.max()) >= self.vocab_size:
            raise ValueError(f"idx must be (B, T) with B, T >= 1 and ids in [0, {self.vocab_size}), "
                             f"got shape {tuple(idx.shape)}")
        x = self.embed(idx)
        zeros = x.new_zeros(idx.shape[0], self.hidden)
        out, _ = self.forward_fn(x, zeros, zeros, self.W_ih, self.W_hh, self.b_ih, self.b_hh)
        return self.head(out)
