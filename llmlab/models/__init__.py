"""Real models: where their files come from, and loaders that build llmlab modules from them.

The loaders import torch (and gguf/safetensors) only when called, so ``import llmlab.models`` stays light.
"""
from llmlab.models.files import minilm_dir, smollm2_gguf_path


def load_smollm2(*args, **kwargs):
    """SmolLM2-135M-Instruct as an ``llmlab.nn.model.Decoder``; see ``llmlab.models.smollm2.load_smollm2``."""
    from llmlab.models.smollm2 import load_smollm2 as load

    return load(*args, **kwargs)


def load_minilm(*args, **kwargs):
    """all-MiniLM-L6-v2 as an ``llmlab.nn.model.Encoder``; see ``llmlab.models.minilm.load_minilm``."""
    from llmlab.models.minilm import load_minilm as load

    return load(*args, **kwargs)


__all__ = ["load_minilm", "load_smollm2", "minilm_dir", "smollm2_gguf_path"]
