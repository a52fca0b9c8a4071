"""Real models: where their files come from, and (later) loaders that build llmlab modules from them."""
from llmlab.models.files import minilm_dir, smollm2_gguf_path

__all__ = ["minilm_dir", "smollm2_gguf_path"]
