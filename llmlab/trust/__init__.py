"""Trustworthy models: privacy, robustness, interpretability, bias, energy."""
