"""The grader's side of a class run's kernel: :class:`Kernel` (the sandboxed worker process and its pipe)
and :class:`RemoteFunction`, which a check calls as if it were the learner's function.

A check is ordinary code that calls ``fn(*args)``. Given a :class:`RemoteFunction`, each call sends the
arguments to the kernel (:mod:`llmlab.course.wire`), the learner's function runs there, and what comes
back is rebuilt here as plain values: the check compares them with the reference in the grader's own
process, where the learner's code never runs. Arguments behave as if passed by reference: the tensors
and containers the function changed in place are changed here too, so a check sees the same effects it
would see in the learner's own kernel. Arguments a check passes with ``copy_args=False`` are also kept
in the kernel for the rest of the check ("held"): the same object on every call, sent once.
"""
from __future__ import annotations

import io
import itertools
import os
import signal
import subprocess

import torch

from llmlab.course import wire

_HANDLES = itertools.count()  # numbers of held objects, unique across the stand-ins of a check

# Values that are never worth holding in the kernel: they are cheap to send again.
_SCALARS = (type(None), bool, int, float, complex, str, bytes, range, torch.dtype, torch.device)


class Kernel:
    """A worker process (usually inside a sandbox) and the pipe to it. Every request has a deadline:
    ``self.deadline`` (a ``time.monotonic()`` value) set by whoever runs the cell or the check."""

    def __init__(self, argv: list[str], env: dict | None = None, max_reply_bytes: int = 2**33, cwd: str | None = None):
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=env, cwd=cwd, start_new_session=True)
        self.wfd, self.rfd = self.proc.stdin.fileno(), self.proc.stdout.fileno()
        self.max_reply_bytes = max_reply_bytes
        self.deadline: float | None = None
        self.failure: wire.KernelFailure | None = None

    def request(self, header: dict, blobs: list = ()) -> tuple[dict, list]:
        """Send one request and wait for its answer. After the first failure (the kernel died, broke the
        protocol or missed a deadline) every request fails the same way: ``self.failure`` says which."""
        if self.failure is not None:
            raise self.failure
        try:
            try:
                wire.write_frame(self.wfd, header, list(blobs))
            except OSError as e:
                raise wire.KernelGone(f"the kernel is gone ({e})") from None
            reply, out = wire.read_frame(self.rfd, self.deadline, self.max_reply_bytes)
            if not isinstance(reply, dict):
                raise wire.ProtocolError("a reply is not a JSON object")
            if "internal" in reply:
                raise wire.ProtocolError(f"the kernel failed to serve a request: {reply['internal']}")
        except wire.KernelFailure as e:
            self.failure = e
            raise
        return reply, out

    def stderr_tail(self) -> str:
        """What the process printed on stderr before it started serving (a sandbox that failed to start)."""
        if self.proc.poll() is None or self.proc.stderr is None:
            return ""
        try:
            return self.proc.stderr.read()[-2000:].decode(errors="replace").strip()
        except (OSError, ValueError):
            return ""

    def close(self) -> None:
        """Stop the worker and everything it started (its process group; the sandbox takes the rest)."""
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        if self.proc.stderr:
            self.proc.stderr.close()


class RemoteFunction:
    """Stands for the learner's function ``name`` in a check: calling it runs the function in the kernel."""

    def __init__(self, kernel: Kernel, name: str):
        self.kernel = kernel
        self.__name__ = self.__qualname__ = name
        self.leaves = wire.LeafTable()
        self.held: dict[int, tuple[int, object]] = {}      # id(obj) -> (handle, obj), obj kept alive here
        self.prints: dict[str, tuple] = {}                 # held leaf -> fingerprint when the kernel last had it

    def __repr__(self) -> str:
        return f"<your function {self.__name__}>"

    def __call__(self, *args, **kwargs):
        return self.llmlab_invoke(args, kwargs)

    def llmlab_invoke(self, args: tuple, kwargs: dict, hold: bool | set[int] = False, via=None):
        """Call the function (``via``: a harness ``via(fn, *args, **kwargs)`` that runs in the kernel with it).
        ``hold``: keep all the arguments (True), or those whose ``id`` is in the set, in the kernel."""
        fresh = {}
        if hold:
            for v in (*args, *kwargs.values()):
                if (hold is True or id(v) in hold) and not isinstance(v, _SCALARS) and id(v) not in self.held:
                    handle = next(_HANDLES)
                    self.held[id(v)] = (handle, v)
                    fresh[handle] = v
        held_ids = {i: h for i, (h, _) in self.held.items() if h not in fresh}
        blobs, leaves = [], []
        header = {"op": "call", "name": self.__name__, "leaves": leaves}
        if fresh:
            data, new = self._pickle(fresh, "s", held_ids)
            header["hold"] = len(blobs)
            blobs.append(data)
            leaves += self._leaf_entries(new, blobs)
        held_ids = {i: h for i, (h, _) in self.held.items()}
        data, new = self._pickle((via, list(args), dict(kwargs)), "c", held_ids)
        header["pickle"] = len(blobs)
        blobs.append(data)
        leaves += self._leaf_entries(new, blobs)
        leaves += self._stale_held_leaves({ref for ref, _, _ in leaves}, blobs)
        try:
            reply, out = self.kernel.request(header, blobs)
            return self._answer(reply, out, args, kwargs)
        finally:
            self.leaves.forget_call()

    # ------------------------------------------------------------------------------- sending

    def _pickle(self, value, namespace: str, held_ids: dict[int, int]):
        class Pickler(wire.ArgPickler):
            def persistent_id(self, obj):
                h = held_ids.get(id(obj))
                return ("held", h) if h is not None else super().persistent_id(obj)

        buf = io.BytesIO()
        Pickler(buf, self.leaves, namespace).dump(value)
        new, pending = [], self.leaves.take_new()
        while pending:  # a leaf's gradient is a leaf of its own
            for ref in pending:
                t = self.leaves.by_ref[ref]
                g = t.grad if t.is_leaf else None
                grad_ref = None if g is None else self.leaves.ref(g, ref[0])
                new.append((ref, grad_ref))
            pending = self.leaves.take_new()
        return buf.getvalue(), new

    def _leaf_entries(self, new: list, blobs: list) -> list:
        out = []
        for ref, grad_ref in new:
            t = self.leaves.by_ref[ref]
            meta = wire.tensor_meta(t)
            meta["grad"] = grad_ref
            out.append([ref, meta, len(blobs)])
            blobs.append(wire.tensor_bytes(t))
            if ref.startswith("s"):
                self.prints[ref] = wire.leaf_fingerprint(t)
        return out


    def _stale_held_leaves(self, sent: set, blobs: list) -> list:
        """Held tensors the check changed since the kernel last saw them: send them again."""
        out = []
        for ref, t in list(self.leaves.by_ref.items()):
            if ref.startswith("s") and ref not in sent and wire.leaf_fingerprint(t) != self.prints.get(ref):
                out += self._leaf_entries([(ref, None)], blobs)
        return out

    # ------------------------------------------------------------------------------- receiving

    def _leaf(self, ref):
        if not isinstance(ref, str) or ref not in self.leaves.by_ref:
            raise wire.ProtocolError("the kernel referred to an argument that was not sent")
        return self.leaves.by_ref[ref]

    def _answer(self, reply: dict, blobs: list, args: tuple, kwargs: dict):
        decoder = wire.Decoder(blobs, leaf=self._leaf)
        for item in reply.get("changed", []):
            self._apply_leaf(item, decoder)
        for item in reply.get("containers", []):
            if not (isinstance(item, list) and len(item) == 2):
                raise wire.ProtocolError("malformed container change")
            key, node = item
            if type(key) is int and 0 <= key < len(args):
                _apply_in_place(args[key], decoder(node))
            elif isinstance(key, str) and key in kwargs:
                _apply_in_place(kwargs[key], decoder(node))
            else:
                raise wire.ProtocolError("a container change names no argument")
        for ref, t in self.leaves.by_ref.items():
            if ref.startswith("s"):
                self.prints[ref] = wire.leaf_fingerprint(t)
        if reply.get("ok") is True:
            return decoder(reply.get("result"))
        exc = reply.get("exc")
        if not isinstance(exc, dict):
            raise wire.ProtocolError("a failed call came without its exception")
        exc_args = decoder(exc.get("args", ["tuple", []]))
        raise wire.remote_exception(str(exc.get("type")), str(exc.get("base")),
                                    exc_args if isinstance(exc_args, tuple) else (str(exc_args),),
                                    str(exc.get("message", ""))[:4000], str(exc.get("frame", ""))[:500])

    def _apply_leaf(self, item, decoder: wire.Decoder) -> None:
        if not (isinstance(item, list) and len(item) == 3):
            raise wire.ProtocolError("malformed tensor change")
        t = self._leaf(item[0])
        data, grad = item[1], item[2]
        with torch.no_grad():
            if data is not None:
                new = decoder(data)
                if not isinstance(new, torch.Tensor):
                    raise wire.ProtocolError("a changed tensor came back as something else")
                new = new.to(device=t.device, dtype=t.dtype)
                if new.shape == t.shape:
                    t.copy_(new)
                else:
                    t.data = new  # the function resized it in place
            if grad != "same" and t.is_leaf:
                g = None if grad is None else decoder(grad)
                if g is None or (isinstance(g, torch.Tensor) and g.shape == t.shape):
                    t.grad = None if g is None else g.to(device=t.device, dtype=t.dtype)



def _apply_in_place(orig, new) -> None:
    """Make the grader's container ``orig`` equal to the kernel's ``new``, keeping the objects inside
    ``orig`` that are still there (and tensors, which the leaf changes already updated)."""
    if orig is new:
        return
    if isinstance(orig, list) and isinstance(new, list):
        if len(orig) == len(new):
            for i, (a, b) in enumerate(zip(orig, new)):
                if type(a) is type(b) and isinstance(a, (list, dict, set)):
                    _apply_in_place(a, b)
                elif a is not b:
                    orig[i] = b
        else:
            orig[:] = new
    elif isinstance(orig, dict) and isinstance(new, dict):
        for k in [k for k in orig if k not in new]:
            del orig[k]
        for k, v in new.items():
            a = orig.get(k) if dict.__contains__(orig, k) else None
            if a is not None and type(a) is type(v) and isinstance(a, (list, dict, set)):
                _apply_in_place(a, v)
            elif not (dict.__contains__(orig, k) and a is v):
                orig[k] = v
    elif isinstance(orig, set) and isinstance(new, (set, frozenset)):
        orig.clear()
        orig.update(new)
    elif isinstance(orig, bytearray) and isinstance(new, (bytes, bytearray)):
        orig[:] = new
    elif isinstance(orig, tuple) and isinstance(new, tuple) and len(orig) == len(new):
        for a, b in zip(orig, new):
            if type(a) is type(b) and isinstance(a, (list, dict, set, bytearray, tuple)):
                _apply_in_place(a, b)

