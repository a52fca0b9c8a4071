"""The capstone's engine (notebook 14): one decode step of SmolLM2, each part drawn where it runs and coloured by
who wrote the code that ran, the learner or llmlab (as ``llmlab.grading.demo.which`` reports it).
"""
from __future__ import annotations

from llmlab.diagrams.draw import PALETTE, arrow, box, canvas, legend
from llmlab import validate

STATES = {"yours": PALETTE["kept"], "llmlab's reference": PALETTE["stored"], "not run": PALETTE["empty"]}
FIXED = "#fdf3d0"  # llmlab's code that is not a part (embedding, norms, matmuls)

# the parts the notebook wraps with ``yours``, in the order they appear in the picture
PARTS = ("engine_generate", "attention_layer", "write_kv", "cached_attention", "next_token", "repetition_penalty",
         "top_k_filter", "top_p_filter", "prune_mask", "per_group", "int4_storage", "prompt_lookup", "greedy_accept")


def _check_parts(parts) -> dict[str, str]:
    if not isinstance(parts, dict):
        raise TypeError(f"parts must be a dict {{part name: state}} (which(...) makes one), got {type(parts).__name__}")
    if not parts:
        raise ValueError("parts is empty: pass which(...) of the parts you wrapped with yours(...)")
    for name, state in parts.items():
        if not isinstance(name, str) or not isinstance(state, str):
            raise TypeError(f"parts must map str names to str states, got {name!r}: {state!r}")
        if name not in PARTS:
            raise ValueError(f"parts has an unknown part {name!r}; the parts are {', '.join(PARTS)}")
        if state not in STATES:
            raise ValueError(f"parts[{name!r}] must be one of {', '.join(map(repr, STATES))}, got {state!r}")
    return {name: parts.get(name, "not run") for name in PARTS}


def engine_step(parts: dict[str, str], n_layers: int = 30):
    """One decode step of the engine, every part coloured by who wrote what ran: ``parts`` maps part names (any of
    ``PARTS``; a missing one is drawn as not run) to "yours", "llmlab's reference" or "not run", as
    ``llmlab.grading.demo.which(*wrapped)`` returns them (at least one); ``n_layers`` (1 .. 10,000) labels the
    repeated layer. Returns the Figure.

    Top row: the loop (``engine_generate``) from the last token to the next one; middle row: one of the n_layers
    layers (``attention_layer`` and the feed-forward); bottom row: where the weights come from (pruned, then stored
    in int4) and the speculative round (drafts checked by one forward pass)."""
    state = _check_parts(parts)
    n_layers = validate.integer("n_layers", n_layers, 1, 10_000)
    fig, ax = canvas(21.5, 12.8, "One decode step of the engine: who wrote the code that ran", scale=0.52)

    def part(x, y, w, name, label=None, h=0.9):
        box(ax, x, y, w, h, label or name, color=STATES[state[name]], fontsize=7.5,
            text_color="#ffffff" if state[name] == "yours" else PALETTE["text"])

    def fixed(x, y, w, label, h=0.9):
        box(ax, x, y, w, h, label, color=FIXED, fontsize=7.5)

    def right(x0, x1, y):
        arrow(ax, (x0, y), (x1, y))

    def chain(x, y, steps, gap=0.3):
        """Boxes left to right from x, an arrow across each gap: steps are (width, label) for llmlab's code and
        (width, label, part name) for a part. Returns where the last box ends."""
        for i, (w, label, *name) in enumerate(steps):
            if i:
                right(x, x + gap, y + 0.45)
                x += gap
            if name:
                part(x, y, w, name[0], label)
            else:
                fixed(x, y, w, label)
            x += w
        return x

    # the loop: last token -> ... -> next token
    box(ax, 0.2, 8.9, 21.1, 2.5, "", color="#ffffff", edge=STATES[state["engine_generate"]])
    ax.text(0.4, 11.15, f"engine_generate: prefill the prompt, then one token per step ({state['engine_generate']})",
            fontsize=8, va="center")
    y = 9.4
    fixed(0.5, y, 1.6, "last token\n(or prompt)")
    right(2.1, 2.5, y + 0.45)
    fixed(2.5, y, 1.5, "embedding")
    right(4.0, 4.4, y + 0.45)
    box(ax, 4.4, y, 2.3, 0.9, f"{n_layers} layers\n(the row below)", color="#ffffff", fontsize=7.5)
    right(6.7, 7.1, y + 0.45)
    fixed(7.1, y, 1.4, "RMSNorm")
    right(8.5, 8.9, y + 0.45)
    fixed(8.9, y, 1.4, "LM head")
    right(10.3, 10.7, y + 0.45)
    box(ax, 10.7, y - 0.25, 9.0, 1.4, "", color="#ffffff", edge=STATES[state["next_token"]])
    ax.text(10.85, y + 0.95, f"next_token ({state['next_token']})", fontsize=7.5, va="center")
    part(10.9, y - 0.1, 2.2, "repetition_penalty", "repetition_\npenalty")
    right(13.1, 13.4, y + 0.35)
    part(13.4, y - 0.1, 1.8, "top_k_filter")
    right(15.2, 15.5, y + 0.35)
    box(ax, 15.5, y - 0.1, 1.3, 0.9, "÷ T", color=FIXED, fontsize=7.5)
    right(16.8, 17.1, y + 0.35)
    part(17.1, y - 0.1, 1.8, "top_p_filter")
    right(19.7, 20.0, y + 0.45)
    fixed(20.0, y, 1.2, "next\ntoken")
    arrow(ax, (5.55, y), (5.55, 8.15), color="#888888")

    # one layer
    y = 6.5
    box(ax, 0.2, 5.9, 21.1, 2.4, "", color="#ffffff", edge=STATES[state["attention_layer"]])
    ax.text(0.4, 8.05, f"one layer: attention_layer ({state['attention_layer']}), then the feed-forward",
            fontsize=8, va="center")
    chain(0.5, y, [(1.4, "RMSNorm"), (1.7, "q, k, v\n= h Wᵀ"), (1.6, "RoPE on\nq and k"), (1.6, "write_kv", "write_kv"),
                   (2.3, "cached_attention\n(per new token)", "cached_attention"), (1.6, "x + out Woᵀ"),
                   (1.4, "RMSNorm"), (2.4, "SwiGLU\nfeed-forward"), (1.2, "+ x")])
    ax.text(18.4, y + 0.45, "the KV cache of\nthis layer fills\nslot by slot", fontsize=7, va="center")

    # the weights and the speculative round
    y = 3.1
    ax.text(0.4, 5.2, "every weight of the layers and the head (the W above):", fontsize=8, va="center")
    chain(0.5, y, [(1.6, "fp32 weight\n(N, K)"), (1.7, "prune_mask\non |W|", "prune_mask"),
                   (1.6, "per_group\n4 bits", "per_group"), (1.9, "int4_storage\ncodes + 8", "int4_storage"),
                   (2.0, "int4 kernel\n(packed)")])
    ax.text(11.3, 5.2, "speculative round (greedy):", fontsize=8, va="center")
    chain(11.3, y, [(2.1, "prompt_lookup\nγ guesses", "prompt_lookup"), (2.5, "one forward:\nlast + γ guesses"),
                    (2.0, "greedy_accept", "greedy_accept"), (2.4, "roll the cache\nback past rejects")])
    legend(ax, {**{k: v for k, v in STATES.items()}, "llmlab's code (not a part)": FIXED}, 0.5, 1.45, size=0.3,
           fontsize=7)
    return fig
