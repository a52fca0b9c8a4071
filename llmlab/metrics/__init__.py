"""Evaluation metrics. ``lm``: log-likelihood, cross-entropy, perplexity."""
