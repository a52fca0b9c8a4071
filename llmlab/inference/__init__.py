"""Running a decoder: sampling and generation (``generation``), speculative decoding (``speculative``),
early exit (``early_exit``), long inputs (``long_context``) and the quantized decode loop (``fast_decoder``)."""
