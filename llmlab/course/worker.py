"""The kernel of a class run: ``python -m llmlab.course.worker``, started by the grader inside the sandbox.

It runs the notebook's cells in an IPython shell (so magics, ``display`` and cell sources work as in
JupyterLab) and, when a check needs the learner's function, calls it on the arguments the grader sends
and sends back what it returned, what it raised and which of its arguments it changed. It never decides
anything: the grader runs the checks and keeps the score, in its own process.

Everything the learner's code can reach lives in this process, so nothing here is trusted: the grader
reads what comes back with :func:`llmlab.course.wire.decode`, which builds only plain values. The requests
arrive on standard input and the answers leave on standard output; the learner's own prints go to an
in-memory tail, and file descriptors 0-2 point at ``/dev/null``, so a print cannot garble the channel.
"""
from __future__ import annotations

import builtins
import collections
import hashlib
import io
import os
import pickle
import sys
from pathlib import Path

_PACKAGE_DIR = str(Path(__file__).resolve().parents[1])
_FROZEN_BYTES = 256 * 2**10  # a container argument larger than this pickled is read-only by contract
_CONTAINERS = (list, dict, set, bytearray, collections.Counter, collections.OrderedDict, collections.defaultdict)


class _Tail(io.TextIOBase):
    """A write-only text stream that keeps the last ``limit`` characters written to it."""

    def __init__(self, limit: int = 4000):
        self.limit, self.text = limit, ""

    def writable(self) -> bool:
        return True

    def write(self, s) -> int:
        s = str(s)
        self.text = (self.text + s)[-self.limit:]
        return len(s)

    def take(self) -> str:
        out, self.text = self.text, ""
        return out


class Worker:
    def __init__(self, rfd: int, wfd: int):
        import torch  # noqa: F401  (the notebooks need it; importing it now keeps the first call's time fair)
        from IPython.core.interactiveshell import InteractiveShell

        from llmlab.course import wire
        from llmlab.grading.core import learner_frame

        self.wire, self.learner_frame, self.rfd, self.wfd = wire, learner_frame, rfd, wfd
        self.shell = InteractiveShell.instance()
        self.out = _Tail()
        self.leaves: dict[str, object] = {}      # ref -> tensor, of this call ("c…") and of held objects ("s…")
        self.prints: dict[str, tuple] = {}       # ref -> fingerprint of (data, grad) when last synchronised
        self.held: dict[int, object] = {}        # handle -> object kept between the calls of one check
        self.frozen: set[int] = set()

    # ------------------------------------------------------------------------------------ the loop

    def serve(self) -> None:
        wire = self.wire
        while True:
            try:
                header, blobs = wire.read_frame(self.rfd)
            except wire.KernelGone:
                return
            op = header.get("op")
            try:
                reply, out_blobs = getattr(self, f"op_{op}")(header, blobs)
            except BaseException as e:  # noqa: BLE001 — a bug here must reach the grader, not end the loop
                if isinstance(e, KeyboardInterrupt):
                    raise
                reply, out_blobs = {"ok": False, "internal": f"{type(e).__name__}: {e}"[:2000]}, []
            wire.write_frame(self.wfd, reply, out_blobs)
            if op == "bye":
                return

    def op_hello(self, header, blobs):
        return {"ok": True, "pid": os.getpid()}, []

    def op_bye(self, header, blobs):
        return {"ok": True}, []

    def op_run(self, header, blobs):
        """Run one cell's code; report whether it raised, and the tail of what it printed."""
        saved = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = self.out
        try:
            result = self.shell.run_cell(header["code"], store_history=True)
        finally:
            sys.stdout, sys.stderr = saved
            self._close_figures()
        err = result.error_before_exec or result.error_in_exec
        reply = {"ok": err is None, "output": self.out.take()[-2000:]}
        if err is not None:
            reply["error"] = f"{type(err).__name__}: {err}"[:1000]
        return reply, []

    @staticmethod
    def _close_figures() -> None:
        plt = sys.modules.get("matplotlib.pyplot")
        if plt is not None:
            try:
                plt.close("all")
            except Exception:  # noqa: BLE001
                pass

    def op_describe(self, header, blobs):
        """What a notebook name is bound to: is it defined, callable, and where its code comes from."""
        name = header["name"]
        if name not in self.shell.user_ns:
            return {"ok": True, "exists": False}, []
        obj = self.shell.user_ns[name]
        code = getattr(obj, "__code__", None) or getattr(getattr(obj, "__func__", None), "__code__", None)
        filename = getattr(code, "co_filename", None)
        return {"ok": True, "exists": True, "callable": callable(obj), "type": type(obj).__name__,
                "module": str(getattr(obj, "__module__", "") or ""), "qualname": str(getattr(obj, "__qualname__", "")),
                "file": filename if isinstance(filename, str) else None,
                "in_package": isinstance(filename, str) and os.path.abspath(filename).startswith(_PACKAGE_DIR + os.sep)}, []

    def op_release(self, header, blobs):
        """The check is over: forget the objects and tensors it kept here."""
        self.held.clear()
        self.frozen.clear()
        self.leaves.clear()
        self.prints.clear()
        return {"ok": True}, []

    # ------------------------------------------------------------------------------------ calls

    def _unpickle(self, data) -> object:
        leaves, held = self.leaves, self.held

        class Unpickler(pickle.Unpickler):
            def persistent_load(self, pid):
                kind, key = pid
                if kind == "leaf":
                    return leaves[key]
                if kind == "held":
                    return held[key]
                raise pickle.UnpicklingError(f"unknown reference {pid!r}")

        return Unpickler(io.BytesIO(data)).load()

    def _fingerprint(self, ref: str) -> tuple:
        return self.wire.leaf_fingerprint(self.leaves[ref])

    def _structure(self, value) -> bytes | None:
        """A digest of a container argument, its tensors counted as references (None: not a container,
        or one too large to synchronise, which a check passes read-only)."""
        if not isinstance(value, (*_CONTAINERS, tuple)):
            return None
        ids = {id(t): ref for ref, t in self.leaves.items()}
        buf = io.BytesIO()

        class Pickler(pickle.Pickler):
            def persistent_id(self, obj):
                return ids.get(id(obj))

        try:
            Pickler(buf, protocol=pickle.HIGHEST_PROTOCOL).dump(value)
        except Exception:  # noqa: BLE001 — something unpicklable inside: it cannot be synchronised
            return None
        if buf.tell() > _FROZEN_BYTES:
            return None
        return hashlib.blake2b(buf.getvalue(), digest_size=16).digest()

    def op_call(self, header, blobs):
        """Call the learner's function (or a check's harness with it) on the grader's arguments."""
        wire = self.wire
        fn = self.shell.user_ns.get(header["name"])
        grads = {}
        for ref, meta, i in header["leaves"]:
            grads[ref] = meta.pop("grad", None)
            t = wire.rebuild_tensor(meta, blobs[i], wire.cuda_matches)
            old = self.leaves.get(ref)
            if old is None:
                self.leaves[ref] = t
            else:  # a held tensor the check changed: change it in place, where the held objects see it
                with sys.modules["torch"].no_grad():
                    if old.shape == t.shape:
                        old.copy_(t)
                    else:
                        old.data = t
        for ref, grad in grads.items():
            if grad is not None:
                self.leaves[ref].grad = self.leaves[grad]
        for ref in grads:
            self.prints[ref] = self._fingerprint(ref)
        if header.get("hold") is not None:
            for handle, obj in self._unpickle(blobs[header["hold"]]).items():
                self.held[handle] = obj
                if isinstance(obj, _CONTAINERS) and self._structure(obj) is None:
                    self.frozen.add(handle)
        harness, args, kwargs = self._unpickle(blobs[header["pickle"]])
        held_ids = {id(o): h for h, o in self.held.items()}
        watched = {key: value for key, value in [*enumerate(args), *kwargs.items()]
                   if held_ids.get(id(value)) not in self.frozen}
        before = {key: self._structure(value) for key, value in watched.items()}
        saved = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = self.out
        try:
            result = harness(fn, *args, **kwargs) if harness is not None else fn(*args, **kwargs)
        except BaseException as e:  # noqa: BLE001 — SystemExit and KeyboardInterrupt from the learner's code too
            reply = {"ok": False, "exc": self._exception(e)}
            result = None
        else:
            reply = {"ok": True}
        finally:
            sys.stdout, sys.stderr = saved
            self._close_figures()
        refs = {id(t): ref for ref, t in self.leaves.items()}
        enc = wire.Encoder(leaf_ref=lambda t: refs.get(id(t)))
        if reply["ok"]:
            try:
                reply["result"] = enc(result)
            except (TypeError, ValueError) as e:
                why = f"cannot send the result back: {e}"
                reply = {"ok": False, "exc": {"type": "TypeError", "base": "TypeError", "frame": "", "message": why,
                                               "args": ["tuple", [["str", why]]]}}
        changed = []
        for ref in list(self.leaves):
            now = self._fingerprint(ref)
            if now != self.prints.get(ref):
                t = self.leaves[ref]
                data = enc(t.detach()) if now[0] != self.prints[ref][0] else None
                grad = (None if t.grad is None else enc(t.grad.detach())) if now[1] != self.prints[ref][1] else "same"
                changed.append([ref, data, grad])
                self.prints[ref] = now
        reply["changed"] = changed
        reply["containers"] = [[key, enc(watched[key])] for key, digest in before.items()
                               if digest is not None and self._structure(watched[key]) != digest]
        for ref in [r for r in self.leaves if r.startswith("c")]:
            del self.leaves[ref], self.prints[ref]
        return reply, enc.blobs

    def _exception(self, e: BaseException) -> dict:
        base = next((c.__name__ for c in type(e).__mro__ if c.__name__ in self.wire.BUILTIN_EXCEPTIONS
                     and getattr(builtins, c.__name__, None) is c), "Exception")
        try:
            args = self.wire.Encoder()(tuple(a if isinstance(a, (str, int, float, bool, type(None))) else str(a)
                                             for a in e.args))
        except Exception:  # noqa: BLE001
            args = ["tuple", [["str", "?"]]]
        try:
            message = str(e)[:4000]
        except Exception:  # noqa: BLE001 — a learner's exception whose __str__ raises
            message = ""
        return {"type": type(e).__name__, "base": base, "args": args, "message": message,
                "frame": self.learner_frame(e)}


def drop_privileges(uid: int, nproc: int | None) -> None:
    """Become ``uid`` (from root), with no supplementary groups and so no capabilities; then cap the
    processes that user may run (the kernel does not enforce that cap for root)."""
    import resource

    if os.getuid() == 0:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    if nproc:
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))


def main(argv: list[str]) -> None:
    import argparse

    p = argparse.ArgumentParser(prog="python -m llmlab.course.worker")
    p.add_argument("--uid", type=int, help="run as this user when started as root")
    p.add_argument("--nproc", type=int, help="processes the kernel's user may run")
    args = p.parse_args(argv)
    if args.uid is not None:
        drop_privileges(args.uid, args.nproc)
    for d in (os.environ.get("HOME"), os.getcwd()):
        if d:
            os.makedirs(d, exist_ok=True)
    # The channel: private copies of stdin/stdout. Then 0-2 point at /dev/null so that nothing the
    # learner's code (or a C library) prints can reach the grader as a message.
    rfd, wfd = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    sys.stdin = open(os.devnull)  # noqa: SIM115
    Worker(rfd, wfd).serve()


if __name__ == "__main__":
    main(sys.argv[1:])
