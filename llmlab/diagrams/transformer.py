"""Notebook 05's pictures: the pre-norm decoder block of a Llama-style model, labelled with a real config's sizes."""
from __future__ import annotations

from llmlab.diagrams.draw import PALETTE, arrow, box, canvas, legend

__all__ = ["block_diagram"]

STREAM = "#e9f5f3"  # the residual stream's values


def _plus(ax, x: float, y: float, r: float = 0.35) -> None:
    from matplotlib.patches import Circle

    ax.add_patch(Circle((x, y), r, facecolor="white", edgecolor="#444444", linewidth=1.0, zorder=3))
    ax.text(x, y, "+", ha="center", va="center", fontsize=12, zorder=4)


def block_diagram(cfg):
    """One pre-norm decoder block (Llama, SmolLM2) as boxes and arrows, with the sizes of ``cfg``.

    The residual stream runs along the top, ``(B, T, dim)``; each sub-layer branches off it, reads an RMSNorm
    of it and adds its output back: attention (q/k/v projections, RoPE on q and k, causal attention where each
    KV head serves ``n_heads / n_kv_heads`` query heads, the output projection), then the SwiGLU MLP (gate and
    up projections to ``hidden_dim``, SiLU(gate) ⊙ up, the down projection). Weight boxes give (in → out).

    cfg: an ``llmlab.nn.model.DecoderConfig`` (e.g. ``config_from_metadata(...)`` of SmolLM2's GGUF file).
    Returns the matplotlib Figure.
    """
    from llmlab.nn.model import DecoderConfig

    if not isinstance(cfg, DecoderConfig):
        raise TypeError(f"cfg must be a DecoderConfig (llmlab.nn.model), got {type(cfg).__name__}")
    C, H, Hkv, D, Fh = cfg.dim, cfg.n_heads, cfg.n_kv_heads, cfg.head_dim, cfg.hidden_dim
    fig, ax = canvas(34.5, 10.2, scale=0.42, title=(
        f"one decoder block (× {cfg.n_layers}): width {C}, {H} query heads and {Hkv} KV heads of {D}, "
        f"MLP hidden size {Fh}"))
    weight, op = PALETTE["stored"], PALETTE["compute"]
    top, mid = 8.0, 4.0  # the residual stream's line, the sub-layers' line

    # the residual stream
    box(ax, 0.0, top - 0.6, 2.4, 1.2, f"x\n(B, T, {C})", color=STREAM, fontsize=8)
    box(ax, 32.0, top - 0.6, 2.4, 1.2, f"out\n(B, T, {C})", color=STREAM, fontsize=8)
    add1, add2 = 17.6, 30.9
    for a, b in ((2.4, add1 - 0.35), (add1 + 0.35, add2 - 0.35), (add2 + 0.35, 32.0)):
        arrow(ax, (a, top), (b, top), color=PALETTE["kept"])
    _plus(ax, add1, top)
    _plus(ax, add2, top)
    ax.text(10.0, top + 0.35, "residual stream: each sub-layer reads it and adds to it", fontsize=8,
            color=PALETTE["kept"], ha="center")

    # the attention sub-layer
    box(ax, 2.9, 0.9, 14.2, 5.9, color="#fbfbf5", edge="#bbbbbb")
    ax.text(3.1, 6.45, "attention sub-layer", fontsize=8, style="italic", color="#666666")
    arrow(ax, (3.9, top), (3.9, mid + 0.8))
    box(ax, 3.05, mid - 0.8, 2.45, 1.6, f"RMSNorm\nattention_norm\n({C},)", color=op, fontsize=6.5)
    rows = {"q": (mid + 1.3, f"W_q  {C}→{H * D}\n{H} heads × {D}"),
            "k": (mid, f"W_k  {C}→{Hkv * D}\n{Hkv} KV heads × {D}"),
            "v": (mid - 1.3, f"W_v  {C}→{Hkv * D}\n{Hkv} KV heads × {D}")}
    for name, (y, text) in rows.items():
        arrow(ax, (5.5, mid), (6.0, y))
        box(ax, 6.0, y - 0.5, 2.9, 1.0, text, color=weight, fontsize=7)
    box(ax, 9.5, mid - 0.5, 2.0, 2.3, f"RoPE\non q and k\nbase {cfg.rope_theta:g}", color=op, fontsize=7)
    for name in ("q", "k"):
        arrow(ax, (8.9, rows[name][0]), (9.5, rows[name][0]))
    arrow(ax, (8.9, rows["v"][0]), (12.1, rows["v"][0]))
    ax.text(10.5, rows["v"][0] + 0.22, "v: no RoPE", fontsize=6.5, ha="center", color="#444444")
    rep = H // Hkv
    box(ax, 12.1, mid - 1.8, 2.4, 3.6, f"causal\nattention\n\nGQA: each\nKV head\nserves {rep}\nquery heads",
        color=op, fontsize=7)
    arrow(ax, (11.5, mid + 0.65), (12.1, mid + 0.65))
    box(ax, 15.0, mid - 0.5, 1.9, 1.0, f"W_o\n{H * D}→{C}", color=weight, fontsize=7)
    arrow(ax, (14.5, mid), (15.0, mid))
    arrow(ax, (16.9, mid), (add1, mid), style="-")
    arrow(ax, (add1, mid), (add1, top - 0.35))

    # the MLP sub-layer
    box(ax, 18.4, 0.9, 12.0, 5.9, color="#fbfbf5", edge="#bbbbbb")
    ax.text(18.6, 6.45, "MLP sub-layer (SwiGLU)", fontsize=8, style="italic", color="#666666")
    arrow(ax, (19.4, top), (19.4, mid + 0.8))
    box(ax, 18.7, mid - 0.8, 2.2, 1.6, f"RMSNorm\nffn_norm\n({C},)", color=op, fontsize=7)
    for y, text in ((mid + 0.9, f"W_1 gate\n{C}→{Fh}"), (mid - 0.9, f"W_3 up\n{C}→{Fh}")):
        arrow(ax, (20.9, mid), (21.5, y))
        box(ax, 21.5, y - 0.55, 2.6, 1.1, text, color=weight, fontsize=7)
    box(ax, 24.7, mid - 0.8, 2.4, 1.6, "SiLU(gate)\n⊙ up", color=op, fontsize=7)
    arrow(ax, (24.1, mid + 0.9), (24.7, mid + 0.4))
    arrow(ax, (24.1, mid - 0.9), (24.7, mid - 0.4))
    box(ax, 27.6, mid - 0.55, 2.4, 1.1, f"W_2 down\n{Fh}→{C}", color=weight, fontsize=7)
    arrow(ax, (27.1, mid), (27.6, mid))
    arrow(ax, (30.0, mid), (add2, mid), style="-")
    arrow(ax, (add2, mid), (add2, top - 0.35))

    ax.text(0.0, 0.25, f"Before block 1: the embedding table ({cfg.vocab_size} × {C}). After block {cfg.n_layers}: "
            f"a final RMSNorm and the head, logits = x Eᵀ" + (" (tied to the embedding)." if cfg.tie_embeddings
                                                              else "."), fontsize=8)
    legend(ax, {"residual stream (B, T, C)": STREAM, "weight matrix (in → out)": weight,
                "operation": op}, x=23.0, y=9.6, size=0.45, fontsize=7)
    return fig
