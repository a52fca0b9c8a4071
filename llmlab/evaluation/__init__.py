"""Evaluating models on tasks: zero-shot multiple choice with a language model (``zero_shot``) and linear
probes on frozen embeddings (``probe``). The metrics themselves live in ``llmlab.metrics``."""
