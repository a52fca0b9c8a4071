"""Transformer building blocks in plain PyTorch: attention, layers, models."""
