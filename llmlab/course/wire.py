"""What crosses between the class grader and a learner's kernel, and how.

The grader (trusted) runs the checks; the kernel (untrusted: the learner's code runs there) runs the
learner's functions. Two directions, two formats:

* grader → kernel: the arguments of a call, pickled. Only the kernel unpickles them, so pickle's power
  (it rebuilds any object: models, optimisers, generators) costs the grader nothing. Tensors travel
  beside the pickle as raw bytes ("leaves"), so the kernel can report which ones the function changed.
* kernel → grader: results, changed arguments and exceptions, as a tree of tagged JSON nodes plus raw
  byte blobs. :func:`decode` builds only plain values of a fixed list of types (numbers, strings, bytes,
  lists, tuples, dicts, sets, ``Counter``, ``range``, tensors, numpy arrays); anything else arrives as
  an inert :class:`Unsendable` that only knows its type's name. A learner-made ``tuple`` subclass whose
  ``==`` is always true arrives as a plain tuple of its items. Sizes, depth and dtypes are checked
  before anything is allocated.

A message on the pipe is one frame: ``MAGIC``, the header's and the body's lengths, the header (JSON)
and the body (the blobs, back to back).
"""
from __future__ import annotations

import builtins
import collections
import hashlib
import itertools
import json
import os
import pickle
import select
import struct
import time
from typing import Any

import numpy as np
import torch

MAGIC = b"LLMW"
_PREFIX = struct.Struct("<4sIQ")  # magic, header length, body length
MAX_HEADER = 256 * 2**20
MAX_DEPTH = 100  # nesting of a value (a tuple of lists of ...): far above any result, far below the stack

TORCH_DTYPES = {str(d).removeprefix("torch."): d for d in (
    torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.complex64, torch.complex128,
    torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, torch.bool)}
NUMPY_KINDS = set("biufc")  # bool, int, uint, float, complex: never object, str or void arrays
# Exceptions rebuilt as themselves on the grader's side, so a check's ``except ValueError`` works there too.
BUILTIN_EXCEPTIONS = {name: getattr(builtins, name) for name in (
    "ArithmeticError", "AssertionError", "AttributeError", "BufferError", "EOFError", "FloatingPointError",
    "ImportError", "IndexError", "KeyError", "LookupError", "MemoryError", "ModuleNotFoundError", "NameError",
    "NotImplementedError", "OSError", "OverflowError", "RecursionError", "RuntimeError", "StopIteration",
    "TimeoutError", "TypeError", "UnboundLocalError", "UnicodeError", "ValueError", "ZeroDivisionError",
    "Exception")}


class KernelFailure(BaseException):
    """The kernel cannot be talked to any more. A ``BaseException``, so that a check's ``except Exception``
    (meant for the learner's errors) never mistakes the channel's failure for the learner's."""


class ProtocolError(KernelFailure):
    """The kernel sent something that is not a valid message."""


class KernelGone(KernelFailure):
    """The kernel's end of the pipe closed: the process died or exited."""


class KernelTimeout(KernelFailure):
    """The kernel did not answer before the deadline."""


class Unsendable:
    """Stands for a value of a type that does not cross to the grader (a generator, a learner's class):
    a check sees its type's name in its message, and nothing else."""

    type_name = "object"

    def __init__(self, description: str = ""):
        self.description = description

    def __repr__(self) -> str:
        return f"<{self.type_name}{': ' + self.description if self.description else ''}>"


_UNSENDABLE: dict[str, type] = {}


def unsendable(type_name: str, description: str = "") -> Unsendable:
    """An :class:`Unsendable` whose class is named ``type_name`` (so ``type(x).__name__`` reads as the learner's)."""
    name = type_name if type_name.isidentifier() else "object"
    cls = _UNSENDABLE.get(name) or _UNSENDABLE.setdefault(name, type(name, (Unsendable,), {"type_name": name}))
    return cls(description[:200])


class RemoteError(Exception):
    """An exception raised in the kernel that cannot be rebuilt as itself here: its class is named like
    the original's and derives from the original's nearest builtin base; ``str()`` gives the original's."""

    message = ""

    def __str__(self) -> str:
        return self.message


_REMOTE_ERRORS: dict[tuple[str, type], type] = {}


def remote_exception(type_name: str, base: str, args: tuple, message: str, frame: str = "") -> BaseException:
    """The grader's copy of an exception raised in the kernel: the builtin class itself when it is one
    (so a check's ``except ValueError`` works), else a :class:`RemoteError`; either way ``str()`` is the
    original's message and ``llmlab_frame`` the learner's line that raised it."""
    exc = None
    if type_name in BUILTIN_EXCEPTIONS and base == type_name:
        try:
            exc = BUILTIN_EXCEPTIONS[type_name](*args)
        except TypeError:
            exc = None
        if exc is not None and str(exc) != message:
            exc = None
    if exc is None:
        parent = BUILTIN_EXCEPTIONS.get(base, Exception)
        name = type_name if type_name.isidentifier() else "Error"
        key = (name, parent)
        cls = _REMOTE_ERRORS.get(key) or _REMOTE_ERRORS.setdefault(key, type(name, (RemoteError, parent), {}))
        exc = cls(*args)
        exc.message = message
    exc.llmlab_frame = frame
    return exc


# ----------------------------------------------------------------------------------------------- frames


def write_frame(fd: int, header: dict, blobs: list[bytes | memoryview] = ()) -> None:
    """Send one message: ``header`` (JSON-able; the blobs' lengths are added to it) and ``blobs``."""
    header = dict(header, blobs=[len(b) if isinstance(b, bytes) else b.nbytes for b in blobs])
    head = json.dumps(header, ensure_ascii=True, allow_nan=False).encode()
    body_len = sum(header["blobs"])
    _write_all(fd, _PREFIX.pack(MAGIC, len(head), body_len) + head)
    for b in blobs:
        _write_all(fd, b)


def _write_all(fd: int, data) -> None:
    view = memoryview(data).cast("B")
    while view:
        n = os.write(fd, view)
        view = view[n:]


def read_frame(fd: int, deadline: float | None = None, max_bytes: int = 2**40) -> tuple[dict, list[memoryview]]:
    """Receive one message; raises :class:`KernelGone` at end of file, :class:`KernelTimeout` past
    ``deadline`` (a ``time.monotonic()`` value), :class:`ProtocolError` for anything malformed."""
    magic, head_len, body_len = _PREFIX.unpack(_read_exactly(fd, _PREFIX.size, deadline))
    if magic != MAGIC:
        raise ProtocolError("a message did not start with the protocol's marker")
    if head_len > MAX_HEADER or body_len > max_bytes:
        raise ProtocolError(f"a message of {head_len + body_len:,} bytes is larger than allowed ({max_bytes:,})")
    try:
        header = json.loads(_read_exactly(fd, head_len, deadline))
    except (ValueError, RecursionError) as e:
        raise ProtocolError(f"a message header is not valid JSON: {e}") from None
    sizes = header.get("blobs") if isinstance(header, dict) else None
    if not isinstance(sizes, list) or not all(type(s) is int and s >= 0 for s in sizes) or sum(sizes) != body_len:
        raise ProtocolError("a message's blob sizes do not add up to its body")
    body = memoryview(_read_exactly(fd, body_len, deadline)) if body_len else memoryview(b"")
    blobs, at = [], 0
    for s in sizes:
        blobs.append(body[at:at + s])
        at += s
    return header, blobs


def _read_exactly(fd: int, n: int, deadline: float | None) -> bytearray:
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise KernelTimeout("no answer in time")
        k = os.readv(fd, [view[got:]])
        if k == 0:
            raise KernelGone("the kernel's end of the pipe closed")
        got += k
    return buf


# --------------------------------------------------------------------------------------------- tensors


def tensor_meta(t: torch.Tensor) -> dict:
    """What is needed to rebuild ``t`` from its contiguous bytes: dtype, shape, strides, device, autograd flags."""
    if t.layout != torch.strided or t.is_quantized or t.is_meta:
        raise TypeError(f"a {t.layout} tensor cannot be sent; use an ordinary dense tensor")
    return {"dtype": str(t.dtype).removeprefix("torch."), "shape": list(t.shape), "stride": list(t.stride()),
            "device": str(t.device), "requires_grad": bool(t.requires_grad),
            "param": isinstance(t, torch.nn.Parameter)}


def tensor_bytes(t: torch.Tensor) -> memoryview:
    """The tensor's elements, contiguous, as bytes (a copy only when it is not contiguous on the CPU)."""
    flat = t.detach().resolve_conj().resolve_neg().to("cpu").contiguous().reshape(-1)
    if flat.numel() == 0:
        return memoryview(b"")
    return memoryview(flat.view(torch.uint8).numpy()).cast("B")


def fingerprint(t: torch.Tensor) -> bytes:
    """A digest of a tensor's values and shape: two fingerprints differ when anything was written into it."""
    h = hashlib.blake2b(digest_size=16)
    h.update(repr((t.dtype, tuple(t.shape))).encode())
    h.update(tensor_bytes(t))
    return h.digest()


def leaf_fingerprint(t: torch.Tensor) -> tuple[bytes, bytes | None]:
    """Fingerprints of an argument tensor's values and of its gradient (None when it has none): what both
    ends compare to tell which arguments a call changed."""
    g = t.grad if t.is_leaf else None
    return fingerprint(t), None if g is None else fingerprint(g)


def rebuild_tensor(meta: dict, data: memoryview, device_ok=lambda d: d.type == "cpu") -> torch.Tensor:
    """A new tensor from :func:`tensor_meta` and :func:`tensor_bytes`, validated before anything is allocated."""
    dtype = TORCH_DTYPES.get(meta.get("dtype")) if isinstance(meta.get("dtype"), str) else None
    if dtype is None:
        raise ProtocolError(f"tensor dtype {meta.get('dtype')!r} is not one that crosses the wire")
    shape, stride = meta.get("shape"), meta.get("stride")
    if not (isinstance(shape, list) and len(shape) <= 32 and all(type(s) is int and s >= 0 for s in shape)):
        raise ProtocolError("malformed tensor shape")
    numel = 1
    for s in shape:
        numel *= s
    itemsize = torch.empty((), dtype=dtype).element_size()
    if numel * itemsize != data.nbytes:
        raise ProtocolError(f"a tensor of shape {shape} and dtype {dtype} needs {numel * itemsize} bytes, "
                            f"not {data.nbytes}")
    if numel == 0:
        t = torch.empty(shape, dtype=dtype)
    else:
        t = torch.frombuffer(bytearray(data), dtype=dtype).reshape(shape)
    if (isinstance(stride, list) and len(stride) == len(shape) and all(type(s) is int and s > 0 for s in stride)
            and stride != list(t.stride()) and numel > 0
            and 1 + sum((n - 1) * s for n, s in zip(shape, stride)) == numel):
        try:  # a permuted layout (a transpose) is kept
            t = torch.empty_strided(shape, stride, dtype=dtype).copy_(t)
        except RuntimeError:  # overlapping after all: keep it contiguous
            pass
    device = meta.get("device", "cpu")
    try:
        dev = torch.device(device) if isinstance(device, str) else torch.device("cpu")
    except RuntimeError:
        dev = torch.device("cpu")
    if dev.type != "cpu" and device_ok(dev):
        t = t.to(dev)
    if meta.get("param"):
        t = torch.nn.Parameter(t, requires_grad=bool(meta.get("requires_grad")) and (t.is_floating_point() or t.is_complex()))
    elif meta.get("requires_grad") and (t.is_floating_point() or t.is_complex()):
        t.requires_grad_(True)
    return t


def cuda_matches(dev: torch.device) -> bool:
    """Whether this process can hold a tensor on ``dev`` (a kernel on the GPU, a grader that has one too)."""
    if dev.type != "cuda" or not torch.cuda.is_available():
        return False
    return dev.index is None or dev.index < torch.cuda.device_count()


# ----------------------------------------------------------------------------- kernel → grader: encode


class Encoder:
    """Turns a value into tagged JSON nodes and blobs. Runs in the kernel; ``leaf_ref`` maps a tensor that
    came in as an argument to its name there, so the grader can hand back its own object."""

    def __init__(self, leaf_ref=None, max_nodes: int = 2_000_000):
        self.blobs: list = []
        self.leaf_ref = leaf_ref or (lambda t: None)
        self.nodes, self.max_nodes = 0, max_nodes

    def blob(self, data) -> int:
        self.blobs.append(data)
        return len(self.blobs) - 1

    def __call__(self, x: Any, depth: int = 0) -> list:
        self.nodes += 1
        if self.nodes > self.max_nodes or depth > MAX_DEPTH:
            raise ValueError("the value is too large or too deeply nested to send")
        d = depth + 1
        if x is None:
            return ["none"]
        if x is Ellipsis:
            return ["ellipsis"]
        if isinstance(x, bool):
            return ["bool", bool(x)]
        if isinstance(x, np.generic):
            return self.numpy_scalar(x)
        if isinstance(x, int):
            return ["int", str(int(x))]
        if isinstance(x, float):
            return ["float", float.__repr__(float(x))]
        if isinstance(x, complex):
            return ["complex", float.__repr__(complex(x).real), float.__repr__(complex(x).imag)]
        if isinstance(x, str):
            return ["str", str.__str__(x)]
        if isinstance(x, (bytes, bytearray, memoryview)):
            kind = "bytearray" if isinstance(x, bytearray) else "bytes"
            return [kind, self.blob(bytes(x))]
        if isinstance(x, torch.Tensor):
            ref = self.leaf_ref(x)
            if ref is not None:
                return ["leaf", ref]
            meta = tensor_meta(x)
            if x.is_leaf and x.grad is not None:
                meta["grad"] = self(x.grad, d)
            return ["tensor", meta, self.blob(tensor_bytes(x))]
        if isinstance(x, torch.dtype):
            return ["dtype", str(x).removeprefix("torch.")]
        if isinstance(x, torch.device):
            return ["device", str(x)]
        if isinstance(x, torch.Size):
            return ["size", [int(s) for s in x]]
        if isinstance(x, np.ndarray):
            if x.dtype.kind not in NUMPY_KINDS or x.dtype.byteorder == ">":
                return ["opaque", "ndarray", f"dtype {x.dtype}"]
            return ["ndarray", x.dtype.str, list(x.shape), self.blob(np.ascontiguousarray(x).tobytes())]
        if isinstance(x, range):
            return ["range", x.start, x.stop, x.step]
        if isinstance(x, slice):
            return ["slice", self(x.start, d), self(x.stop, d), self(x.step, d)]
        if isinstance(x, collections.Counter):
            return ["counter", [[self(k, d), self(v, d)] for k, v in dict.items(x)]]
        if isinstance(x, collections.defaultdict):
            factory = getattr(x.default_factory, "__name__", None)
            factory = factory if factory in ("int", "float", "list", "set", "dict", "str") else None
            return ["defaultdict", factory, [[self(k, d), self(v, d)] for k, v in dict.items(x)]]
        if isinstance(x, dict):
            return ["dict", [[self(k, d), self(v, d)] for k, v in dict.items(x)]]
        if isinstance(x, list):
            return ["list", [self(v, d) for v in list.__iter__(x)]]
        if isinstance(x, tuple):
            return ["tuple", [self(v, d) for v in tuple.__iter__(x)]]
        if isinstance(x, frozenset):
            return ["frozenset", [self(v, d) for v in frozenset.__iter__(x)]]
        if isinstance(x, set):
            return ["set", [self(v, d) for v in set.__iter__(x)]]
        if isinstance(x, BaseException):
            return ["opaque", type(x).__name__, _safe_str(x)]
        return ["opaque", type(x).__name__, ""]

    def numpy_scalar(self, x: np.generic) -> list:
        if x.dtype.kind not in NUMPY_KINDS:
            return ["opaque", type(x).__name__, ""]
        return ["npscalar", x.dtype.str, self.blob(x.tobytes())]


def _safe_str(x) -> str:
    try:
        return str(x)[:2000]
    except Exception:  # a learner's __str__ may raise
        return ""


# ------------------------------------------------------------------------------ kernel → grader: decode


class Decoder:
    """Rebuilds values from :class:`Encoder`'s nodes, as plain objects of a fixed list of types.
    Runs in the grader: nothing here calls code the kernel sent."""

    def __init__(self, blobs: list[memoryview], leaf=None, max_nodes: int = 5_000_000):
        self.blobs = blobs
        self.leaf = leaf or (lambda ref: (_ for _ in ()).throw(ProtocolError("unexpected argument reference")))
        self.nodes, self.max_nodes = 0, max_nodes

    def blob(self, i) -> memoryview:
        if type(i) is not int or not 0 <= i < len(self.blobs):
            raise ProtocolError("a value refers to a blob that does not exist")
        return self.blobs[i]

    def __call__(self, node, depth: int = 0) -> Any:
        self.nodes += 1
        if self.nodes > self.max_nodes or depth > MAX_DEPTH:
            raise ProtocolError("the value is too large or too deeply nested")
        if not (isinstance(node, list) and node and isinstance(node[0], str)):
            raise ProtocolError("malformed value")
        tag, args, d = node[0], node[1:], depth + 1
        try:
            return self._decode(tag, args, d)
        except ProtocolError:
            raise
        except (TypeError, ValueError, IndexError, KeyError, OverflowError, RuntimeError) as e:
            raise ProtocolError(f"malformed {tag} value: {e}") from None

    def _pairs(self, items, d) -> list:
        if not isinstance(items, list):
            raise ProtocolError("malformed mapping")
        out = []
        for kv in items:
            if not (isinstance(kv, list) and len(kv) == 2):
                raise ProtocolError("malformed mapping item")
            out.append((self(kv[0], d), self(kv[1], d)))
        return out

    def _items(self, items, d) -> list:
        if not isinstance(items, list):
            raise ProtocolError("malformed sequence")
        return [self(v, d) for v in items]

    def _decode(self, tag: str, a: list, d: int):
        if tag == "none":
            return None
        if tag == "ellipsis":
            return Ellipsis
        if tag == "bool":
            if type(a[0]) is not bool:
                raise ProtocolError("malformed bool")
            return a[0]
        if tag == "int":
            if not isinstance(a[0], str) or len(a[0]) > 4300:
                raise ProtocolError("malformed int")
            return int(a[0])
        if tag == "float":
            return float(_str(a[0]))
        if tag == "complex":
            return complex(float(_str(a[0])), float(_str(a[1])))
        if tag == "str":
            return _str(a[0])
        if tag == "bytes":
            return bytes(self.blob(a[0]))
        if tag == "bytearray":
            return bytearray(self.blob(a[0]))
        if tag == "tensor":
            if not isinstance(a[0], dict):
                raise ProtocolError("malformed tensor")
            t = rebuild_tensor(a[0], self.blob(a[1]), cuda_matches)
            if a[0].get("grad") is not None:
                grad = self(a[0]["grad"], d)
                if isinstance(grad, torch.Tensor) and grad.shape == t.shape and t.is_floating_point():
                    t.grad = grad.to(t.dtype)
            return t
        if tag == "leaf":
            return self.leaf(a[0])
        if tag == "dtype":
            dt = TORCH_DTYPES.get(_str(a[0]))
            return dt if dt is not None else unsendable("dtype", a[0])
        if tag == "device":
            try:
                return torch.device(_str(a[0]))
            except RuntimeError:
                return unsendable("device", a[0])
        if tag == "size":
            return torch.Size([_int(s) for s in a[0]])
        if tag == "ndarray":
            dtype = np.dtype(_str(a[0]))
            if dtype.kind not in NUMPY_KINDS:
                raise ProtocolError(f"numpy dtype {dtype} does not cross the wire")
            shape = [_int(s) for s in a[1]]
            data = self.blob(a[2])
            if int(np.prod(shape, dtype=np.int64)) * dtype.itemsize != data.nbytes:
                raise ProtocolError("a numpy array's bytes do not match its shape")
            return np.frombuffer(bytes(data), dtype=dtype).reshape(shape).copy()
        if tag == "npscalar":
            dtype = np.dtype(_str(a[0]))
            if dtype.kind not in NUMPY_KINDS or self.blob(a[1]).nbytes != dtype.itemsize:
                raise ProtocolError("malformed numpy scalar")
            return np.frombuffer(bytes(self.blob(a[1])), dtype=dtype)[0]
        if tag == "range":
            return range(_int(a[0]), _int(a[1]), _int(a[2]))
        if tag == "slice":
            return slice(self(a[0], d), self(a[1], d), self(a[2], d))
        if tag == "list":
            return self._items(a[0], d)
        if tag == "tuple":
            return tuple(self._items(a[0], d))
        if tag == "set":
            return set(self._items(a[0], d))
        if tag == "frozenset":
            return frozenset(self._items(a[0], d))
        if tag == "dict":
            return dict(self._pairs(a[0], d))
        if tag == "counter":
            return collections.Counter(dict(self._pairs(a[0], d)))
        if tag == "defaultdict":
            factory = {"int": int, "float": float, "list": list, "set": set, "dict": dict, "str": str}.get(a[0])
            return collections.defaultdict(factory, self._pairs(a[1], d))
        if tag == "opaque":
            return unsendable(_str(a[0]), _str(a[1]) if len(a) > 1 else "")
        raise ProtocolError(f"unknown value type {tag!r}")


def _str(x) -> str:
    if not isinstance(x, str):
        raise ProtocolError("malformed string")
    return x


def _int(x) -> int:
    if type(x) is not int:
        raise ProtocolError("malformed integer")
    return x


def encode(x, leaf_ref=None) -> tuple[list, list]:
    """(node, blobs) for a value, in the kernel."""
    enc = Encoder(leaf_ref)
    return enc(x), enc.blobs


def decode(node, blobs: list[memoryview], leaf=None):
    """The grader's plain copy of an encoded value."""
    return Decoder(blobs, leaf)(node)


# ------------------------------------------------------------------------------ grader → kernel: arguments


class Handle:
    """Stands, in a call's pickled arguments, for an object the kernel already holds from an earlier call."""

    def __init__(self, number: int):
        self.number = number


class ArgPickler(pickle.Pickler):
    """Pickles a call's arguments with every tensor replaced by a reference to a leaf sent as raw bytes."""

    def __init__(self, file, leaves: "LeafTable", namespace: str):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.leaves, self.namespace = leaves, namespace

    def persistent_id(self, obj):
        if isinstance(obj, torch.Tensor):
            return ("leaf", self.leaves.ref(obj, self.namespace))
        return None


class LeafTable:
    """The tensors of a call (namespace "c", forgotten after it) and of the kernel-held objects
    (namespace "s", kept for the whole check), in the order they were first met."""

    _numbers = itertools.count()  # refs are unique across tables: a check may hold several functions' arguments

    def __init__(self):
        self.by_ref: dict[str, torch.Tensor] = {}
        self.ids: dict[int, str] = {}
        self.new: list[str] = []

    def ref(self, t: torch.Tensor, namespace: str) -> str:
        known = self.ids.get(id(t))
        if known is not None:
            return known
        ref = f"{namespace}{next(self._numbers)}"
        self.by_ref[ref], self.ids[id(t)] = t, ref
        self.new.append(ref)
        return ref

    def take_new(self) -> list[str]:
        out, self.new = self.new, []
        return out

    def forget_call(self) -> None:
        for ref in [r for r in self.by_ref if r.startswith("c")]:
            self.ids.pop(id(self.by_ref.pop(ref)), None)
