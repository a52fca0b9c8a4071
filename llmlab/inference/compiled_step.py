"""FastDecoder's decode step compiled whole, as gpt-fast does it, and compiled once per machine.

At batch 1 a decode step is ~120 matmuls and ~1,300 small operations (norms, RoPE, SiLU, adds, cache
writes); on a CPU each small op costs microseconds of dispatch, a third of the step and more. A
compiler fuses the small ops into a few C++ loops around the matmuls, but only if it sees the whole
step as one graph. ``FastDecoder.forward`` is not that: its cache hands attention a longer tensor
every step and its checks read Python ints off tensors (``.item()``), each a graph break. The step
here is written for the compiler:

* one graph for any batch and cache size: attention reads all S slots of the preallocated
  ``KVCache``, and a mask hides the slots not written yet (j > slot) and pad tokens (``real`` False);
* the step's varying numbers are tensors, not Python ints: the slot written (``slots``), the RoPE
  positions and ``real``; the new keys and values are written in place with one indexed write into
  the cache tensor itself (a write through the view ``k[layer]`` would make the compiler copy the
  whole cache around it, every layer);
* no ``.item()``, no checks inside: ``CompiledDecoder.forward`` keeps the cache's books (length,
  positions, pad slots) in eager code around the compiled call.

    step(idx (B, 1), slots (1,), positions (B, 1), real (B, S), k, v (L, B, Hkv, S, D)) -> logits (B, V)

Two ways to compile it (``CompiledDecoder(mode=...)``):

* ``"aot"`` (default on the CPU): ``torch.export`` traces the step (a full graph by construction, with
  B and S symbolic) and AOTInductor compiles it into a package of C++ kernels and a C++ runner
  (``package_step``). Building takes about a minute on 2 cores; the package is kept in a folder
  keyed by the weights, the layout and the torch version, and a later process loads it in under a
  second. A call runs no Python between kernels and evaluates no guards.
* ``"jit"`` (default on CUDA): ``torch.compile(step, fullgraph=True)``: a graph break is an error,
  not a silent slowdown; on CUDA with ``mode="reduce-overhead"`` (CUDA graphs; the cache's tensors
  are marked static, so the graph replays in place). Inductor's on-disk cache makes a second
  process's compile take seconds; each new (B, S) compiles again.

A prefill (more than one token) runs eagerly in ``FastDecoder``: it is one call per prompt.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import sysconfig
import warnings
import weakref
from pathlib import Path

import torch
import torch.nn as nn

from llmlab import validate
from llmlab.inference.fast_decoder import FastDecoder
from llmlab.nn.kv_cache import KVCache
from llmlab.nn.layers import rms_norm

MODES = ("aot", "jit")


def compiler_available() -> str | None:
    """None when Inductor can compile for the CPU here, else why not (it writes C++ and needs a compiler)."""
    cxx = (sysconfig.get_config_var("CXX") or "c++").split()[0]
    if not any(shutil.which(c) for c in (cxx, "g++", "c++", "clang++")):
        return "no C++ compiler on PATH (Inductor compiles C++ kernels for the CPU)"
    return None


def default_package_dir() -> Path:
    """Where compiled steps are kept: ``$LLMLAB_COMPILED`` or ``~/.cache/llmlab/compiled``."""
    return Path(os.environ.get("LLMLAB_COMPILED") or Path.home() / ".cache" / "llmlab" / "compiled")


class StaticStep(nn.Module):
    """One decode step of a ``FastDecoder`` whose shapes do not change from step to step (see the module's
    docstring)."""

    def __init__(self, fast: FastDecoder):
        super().__init__()
        if not isinstance(fast, FastDecoder):
            raise TypeError(f"fast must be a FastDecoder, got {type(fast).__name__}")
        self.fast = fast

    def forward(self, idx: torch.Tensor, slots: torch.Tensor, positions: torch.Tensor, real: torch.Tensor,
                k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """idx (B, T) written at cache slots ``slots`` (T,) with RoPE ``positions`` (B, T); ``real`` (B, S) False
        at pad slots; k, v (L, B, Hkv, S, D), written in place -> logits of the last token (B, V)."""
        fast = self.fast
        B, T = idx.shape
        keys = torch.arange(k.shape[3], device=idx.device)
        # a query at slot s sees the real keys j <= s, and itself (a pad query must see something: NaN otherwise)
        mask = ((keys <= slots[:, None]) & real[:, None, :]) | (keys == slots[:, None])  # (B, T, S)

        def update(i: int, k_new: torch.Tensor, v_new: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            layer = torch.full_like(slots, i)  # k[layer, :, :, slots] is (T, B, Hkv, D)
            k[layer, :, :, slots] = k_new.permute(2, 0, 1, 3)
            v[layer, :, :, slots] = v_new.permute(2, 0, 1, 3)
            return k[i], v[i]

        x = fast.blocks(idx, positions, mask[:, None], update).view(B, T, -1)[:, -1]
        return fast.output(rms_norm(x, fast.norm, fast.cfg.norm_eps))


def step_inputs(fast: FastDecoder, batch_size: int, max_len: int) -> tuple[torch.Tensor, ...]:
    """Inputs of a ``StaticStep`` for a fresh cache of (batch_size, max_len): what export traces with."""
    if not isinstance(fast, FastDecoder):
        raise TypeError(f"fast must be a FastDecoder, got {type(fast).__name__}")
    batch_size, max_len = validate.size("batch_size", batch_size), validate.size("max_len", max_len)
    cache = KVCache.for_model(fast, batch_size, max_len)
    device = cache.k.device
    zeros = torch.zeros(batch_size, 1, dtype=torch.long, device=device)
    return zeros, torch.zeros(1, dtype=torch.long, device=device), zeros.clone(), cache.real, cache.k, cache.v


def fingerprint(fast: FastDecoder) -> str:
    """A name for this model's compiled step: its layout (module types, shapes, dtypes), every weight's
    bytes and the torch version, hashed. A different model or torch gets a different package."""
    if not isinstance(fast, FastDecoder):
        raise TypeError(f"fast must be a FastDecoder, got {type(fast).__name__}")
    h = hashlib.blake2b(digest_size=12)
    h.update(f"{torch.__version__}|{fast.cfg}|{fast.norm.device.type}".encode())
    for name, t in list(fast.named_buffers()) + list(fast.named_parameters()):
        owner = type(fast.get_submodule(name.rpartition(".")[0])).__name__  # the layout: Linear, Int4..., ...
        h.update(f"{name}|{owner}|{t.dtype}|{tuple(t.shape)}".encode())
        h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy())  # the bytes, not copied
    return h.hexdigest()


def package_step(fast: FastDecoder, path: str | Path, max_batch: int = 64, autotune: bool = True) -> Path:
    """Compile ``fast``'s decode step ahead of time into the package ``path`` (.pt2), for batches of
    1 .. ``max_batch`` and any cache length: ``torch.export`` (the whole step as one graph, B and S
    symbolic), then AOTInductor. The package holds the weights.

    ``autotune``: Inductor's max-autotune times, for every matmul shape, its own C++ micro-GEMM
    kernels against aten's and keeps the faster (on SmolLM2's int4 blocks and int8 head its own won
    every shape, the head by ~3x); about 1.5 minutes on 2 cores instead of 1."""
    if not isinstance(fast, FastDecoder):
        raise TypeError(f"fast must be a FastDecoder, got {type(fast).__name__}")
    max_batch = validate.size("max_batch", max_batch, minimum=2)
    validate.flag("autotune", autotune)
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a file path (str or Path), got {type(path).__name__}")
    path = Path(path)
    if path.suffix != ".pt2":
        raise ValueError(f"path must name a .pt2 file (AOTInductor's package), got {str(path)!r}")
    from torch.export import Dim

    B, S = Dim("B", min=1, max=max_batch), Dim("S", min=2, max=fast.cfg.max_seq_len)
    shapes = ({0: B}, None, {0: B}, {0: B, 1: S}, {1: B, 3: S}, {1: B, 3: S})
    with torch.no_grad():
        # traced at B = 2, S = 16: an example of size 1 would fix that size (export specialises 0 and 1)
        # torch's own pytree deprecation notice (LeafSpec), raised inside export and the packaging: not the user's
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*LeafSpec.*", category=FutureWarning)
            program = torch.export.export(StaticStep(fast), step_inputs(fast, 2, 16), dynamic_shapes=shapes,
                                          strict=False)
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(path.stem + ".partial.pt2")  # a package is complete or absent
            options = {"max_autotune": True, "autotune_num_choices_displayed": 0,  # its tables, not on stderr
                       "max_autotune_report_choices_stats": False} if autotune else {}
            if autotune and fast.norm.device.type == "cpu":
                options["max_autotune_gemm_backends"] = "CPP,ATEN"
            torch._inductor.aoti_compile_and_package(program, package_path=str(partial), inductor_configs=options)
        partial.replace(path)
    return path


class CompiledDecoder(nn.Module):
    """A ``FastDecoder`` whose one-token steps run compiled; ``forward`` has ``FastDecoder``'s signature
    and results, so ``generate``/``stream``/``stream_batch`` drive it unchanged.

    mode: ``"aot"`` (an AOTInductor package, built into ``package_dir`` on first use and reused by
    every later process; default on the CPU; ``autotune`` as in ``package_step``) or ``"jit"``
    (``torch.compile(fullgraph=True)``; default on CUDA). ``options``: passed to ``torch.compile`` in
    ``"jit"`` mode (e.g. ``mode="max-autotune"``).
    Build it after the model's last weight change: an AOT package holds the weights it was made from."""

    def __init__(self, fast: FastDecoder, mode: str | None = None, package_dir: str | Path | None = None,
                 autotune: bool = True, verbose: bool = True, **options):
        super().__init__()
        if not isinstance(fast, FastDecoder):
            raise TypeError(f"fast must be a FastDecoder, got {type(fast).__name__}")
        cuda = fast.norm.device.type == "cuda"
        mode = validate.choice("mode", mode, MODES) if mode is not None else ("jit" if cuda else "aot")
        if mode == "aot" and options:
            raise ValueError(f"torch.compile options ({', '.join(options)}) apply to mode='jit' only")
        self.fast, self.cfg, self.mode = fast, fast.cfg, mode
        if package_dir is not None and not isinstance(package_dir, (str, os.PathLike)):
            raise TypeError(f"package_dir must be a folder path (str or Path) or None, "
                            f"got {type(package_dir).__name__}")
        if package_dir is not None and not os.fspath(package_dir):
            raise ValueError("package_dir must name a folder, got an empty path (None: the default folder)")
        self.package_dir = Path(package_dir) if package_dir is not None else default_package_dir()
        self.verbose = validate.flag("verbose", verbose)
        self.autotune = validate.flag("autotune", autotune)
        self.options = {"fullgraph": True, "dynamic": False, **options}
        if cuda and mode == "jit" and "mode" not in options and "backend" not in options:
            self.options["mode"] = "reduce-overhead"
        self._step = None
        self._static_cache = lambda: None  # the cache whose tensors were last marked static (a weak reference)

    def package_path(self) -> Path:
        """The AOT package of this model's step (``"aot"`` mode): named by its weights' fingerprint."""
        return self.package_dir / f"decode_step_{fingerprint(self.fast)}{'' if self.autotune else '_plain'}.pt2"

    def compiled_step(self):
        """The compiled step: a callable with ``StaticStep``'s arguments (built or loaded on first use)."""
        if self._step is not None:
            return self._step
        if self.mode == "jit":
            self._step = torch.compile(StaticStep(self.fast), **self.options)
            return self._step
        path = self.package_path()
        if not path.exists():
            if self.verbose:
                print(f"compiling the decode step ahead of time into {path} (1-2 minutes on 2 cores, once) ...",
                      flush=True)
            package_step(self.fast, path, autotune=self.autotune)
        self._step = torch._inductor.aoti_load_package(str(path))
        return self._step

    @torch.no_grad()
    def forward(self, idx: torch.Tensor, cache: KVCache, attention_mask: torch.Tensor | None = None,
                last_only: bool = False) -> torch.Tensor:
        """As ``FastDecoder.forward``: idx (B, T) -> logits (B, T, V) ((B, 1, V) with ``last_only``).
        A step of one token with ``last_only`` runs compiled; anything else runs eagerly."""
        # a SlidingWindowCache (a subclass) moves its slots when it evicts: not one graph, so eager
        if type(cache) is not KVCache or not isinstance(idx, torch.Tensor) or idx.shape[1:] != (1,) or not last_only:
            return self.fast(idx, cache, attention_mask, last_only)
        validate.token_batch("idx", idx, self.cfg.vocab_size, self.cfg.max_seq_len)
        # the cache's own books (room, positions, pad slots), in eager code: its checks read ints
        positions, _ = cache.begin(1, attention_mask, batch_size=idx.shape[0], max_positions=self.cfg.max_seq_len)
        slots = torch.tensor([cache.length], device=idx.device)
        if self.mode == "jit" and cache.k.device.type == "cuda" and self._static_cache() is not cache:
            for t in (cache.k, cache.v, cache.real):  # CUDA graphs replay on fixed addresses: once per cache
                torch._dynamo.mark_static_address(t)
            self._static_cache = weakref.ref(cache)
        logits = self.compiled_step()(idx, slots, positions, cache.real, cache.k, cache.v)
        cache.end(1)
        return logits[:, None]
