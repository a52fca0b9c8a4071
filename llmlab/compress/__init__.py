"""Compression beyond quantization: distillation, weight sharing, low-rank factorisation, and what each saves."""
