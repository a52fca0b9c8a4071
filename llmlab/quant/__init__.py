"""Quantization: storing weights in fewer bits and computing with them."""
