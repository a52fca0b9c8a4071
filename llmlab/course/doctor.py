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
    required: bool = True  # a missing optional item is a warning (⚠), not a failure


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
    from llmlab.course.sandbox import choose

    box = choose("auto")
    items.append(Item("sandbox for class runs (teachers)", box.isolated,
                      "bubblewrap works" if box.isolated else box.note, required=False))
    try:
        from torch.utils.cpp_extension import is_ninja_available

        from llmlab.inference.compiled_step import compiler_available

        problem = compiler_available() or (None if is_ninja_available() else "ninja missing: pip install ninja")
    except ImportError as e:  # torch missing: reported above
        problem = str(e)
    items.append(Item("C++ build (compiled decode step, int4 x int8 kernel)", problem is None,
                      problem or "a C++ compiler and ninja: benchmarks/decode.py can compile its fast rows",
                      required=False))
    from llmlab.plotting import _INSTALL_HINT, find_cjk_font

    font = find_cjk_font()
    items.append(Item("Chinese font for plots", font is not None, font or f"none: {_INSTALL_HINT}", required=False))
    return items


def format_report(items: list[Item]) -> str:
    width = max(len(i.name) for i in items)
    mark = lambda i: "✅" if i.ok else "❌" if i.required else "⚠️"  # noqa: E731
    return "\n".join(f"{mark(i)} {i.name.ljust(width)}  {i.detail}" for i in items)
