"""Is this machine ready for the course? ``python -m llmlab.course doctor`` or ``environment_report()``."""
from __future__ import annotations

import importlib.metadata
import platform
import sys
from dataclasses import dataclass


@dataclass
class Item:
    name: str
    ok: bool
    detail: str


def _version(pkg: str) -> str | None:
    try:
        return importlib.metadata.version(pkg)
    except importlib.metadata.PackageNotFoundError:
        return None


def environment_report() -> list[Item]:
    """One line per requirement: Python, torch, the device, and the real assets the course uses."""
    import llmlab
    from llmlab.models import files

    items = [Item("python", sys.version_info >= (3, 10), platform.python_version())]
    torch_version = _version("torch")
    items.append(Item("torch", torch_version is not None, torch_version or "missing: pip install torch"))
    try:
        dev = llmlab.device()
        items.append(Item("device", True, f"{dev} (set LLMLAB_DEVICE to override)"))
    except Exception as e:  # a bad LLMLAB_DEVICE, or torch missing
        items.append(Item("device", False, str(e)))
    for name, locate in [("SmolLM2-135M-Instruct (GGUF)", files.smollm2_gguf_path),
                         ("all-MiniLM-L6-v2 (safetensors)", files.minilm_dir)]:
        try:
            path = locate()
            size = sum(p.stat().st_size for p in ([path] if path.is_file() else path.rglob("*")))
            items.append(Item(name, True, f"{size / 1e6:.0f} MB at {path}"))
        except FileNotFoundError as e:
            items.append(Item(name, False, str(e)))
    try:
        from llmlab.data import pydoc_topics

        topics = pydoc_topics()
        items.append(Item("pydoc_data.topics (English)", True,
                          f"{len(topics)} topics, {sum(map(len, topics.values())):,} characters"))
    except ImportError as e:
        items.append(Item("pydoc_data.topics (English)", False, str(e)))
    jieba_version = _version("jieba")
    items.append(Item("jieba (Chinese dictionary)", jieba_version is not None, jieba_version or "missing: pip install jieba"))
    return items


def format_report(items: list[Item]) -> str:
    width = max(len(i.name) for i in items)
    return "\n".join(f"{'✅' if i.ok else '❌'} {i.name.ljust(width)}  {i.detail}" for i in items)
