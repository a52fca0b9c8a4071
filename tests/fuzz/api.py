"""The public API of llmlab: every public function and class defined in its modules.

Walks the package with ``pkgutil``, leaving out the grader (``llmlab.grading``), the course tools
(``llmlab.course``) and every private name (a module, function or class whose name starts with ``_``).
A callable is listed under the module that defines it (``obj.__module__``), so a re-export is not
counted twice.
"""
from __future__ import annotations

import importlib
import inspect
import pkgutil

EXCLUDED = ("llmlab.grading", "llmlab.course")


def _excluded(module: str) -> bool:
    return module.startswith(tuple(p + "." for p in EXCLUDED)) or module in EXCLUDED or any(
        part.startswith("_") for part in module.split(".")[1:]
    )


def public_modules() -> list[str]:
    """Names of llmlab and its public modules, sorted."""
    import llmlab

    names = ["llmlab"]
    for info in pkgutil.walk_packages(llmlab.__path__, "llmlab.", onerror=lambda name: None):
        if not _excluded(info.name):
            names.append(info.name)
    return sorted(names)


def public_callables() -> tuple[dict[str, object], dict[str, str]]:
    """``({qualified name: function or class}, {module: import error})``, sorted by name."""
    found: dict[str, object] = {}
    errors: dict[str, str] = {}
    for name in public_modules():
        try:
            module = importlib.import_module(name)
        except Exception as e:  # noqa: BLE001 - reported, not fatal
            errors[name] = f"{type(e).__name__}: {e}"
            continue
        for attr, obj in vars(module).items():
            if attr.startswith("_") or not (inspect.isfunction(obj) or inspect.isclass(obj)):
                continue
            if getattr(obj, "__module__", None) == name:
                found[f"{name}.{attr}"] = obj
    return dict(sorted(found.items())), errors


def resolve(qualname: str):
    """The object a qualified name such as ``llmlab.ngram.NGramLM.fit`` stands for (a method: its function)."""
    parts = qualname.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(qualname)
