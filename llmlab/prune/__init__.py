"""Pruning: unstructured (magnitude, Wanda), semi-structured (N:M) and structured (heads, neurons)."""
