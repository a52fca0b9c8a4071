"""Bad-looking values that are in fact fine for the K-major fp32 layer of the compiled decode step
(``llmlab.inference.fast_decoder.TransposedLinear``; merged into ``accepted.ACCEPTED``)."""

_ANY_LEADING = "x (..., K): any number of leading dims, none of them required to be non-empty (as nn.Linear)"
ACCEPTED = {
    "llmlab.inference.fast_decoder.TransposedLinear.forward(x=<empty>)": _ANY_LEADING,
    "llmlab.inference.fast_decoder.TransposedLinear.forward(x=<extra_dim>)": _ANY_LEADING,
    "llmlab.inference.fast_decoder.TransposedLinear.forward(x=<missing_dim>)": _ANY_LEADING,
    "llmlab.inference.fast_decoder.TransposedLinear.forward(x=<nan>)": "a hot layer does not scan its input for NaN "
                                                                       "(as nn.Linear); NaN in, NaN out",
}
