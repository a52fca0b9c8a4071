"""The pieces of a class run: what crosses the pipe (wire), the grader's stand-in for a learner's function
(remote), the rebuilt notebook (rebuild), the sandbox, and a check run through a kernel giving the same
verdict as in the learner's notebook."""
import collections
import importlib
import io
import contextlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from llmlab.course import notebooks, rebuild, sandbox, wire
from llmlab.course.remote import Kernel, RemoteFunction
from llmlab.grading import ExerciseFailure
from llmlab.grading.core import invoke
from tests.mutants import catalogue

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------------------- wire


def _round_trip(x):
    node, blobs = wire.encode(x)
    head = json.loads(json.dumps(node))  # what the pipe carries is JSON
    return wire.decode(head, [memoryview(bytes(b)) for b in blobs])


@pytest.mark.parametrize("value", [
    None, True, 3, -2**70, 1.5, float("inf"), "中文 text", b"\x00\xff", bytearray(b"ab"), [1, [2, (3,)]], (1, "a"),
    {1: "x", (2, 3): [4]}, {1, 2}, frozenset({3}), collections.Counter("abca"), range(2, 9, 3), slice(1, None),
    collections.defaultdict(list, {"a": [1]}), torch.float16, torch.Size([2, 3]), 2 + 3j,
])
def test_plain_values_cross_unchanged(value):
    out = _round_trip(value)
    assert out == value and type(out) is type(value)


def test_tensors_cross_with_dtype_shape_layout_and_gradient():
    for t in (torch.randn(3, 4), torch.arange(6).reshape(2, 3).t(), torch.zeros(0, 5), torch.tensor(True),
              torch.randn(4, dtype=torch.bfloat16), torch.randint(0, 9, (2, 2), dtype=torch.uint8)):
        out = _round_trip(t)
        assert out.dtype == t.dtype and out.shape == t.shape and out.stride() == t.stride() and torch.equal(out, t)
    p = torch.nn.Parameter(torch.randn(3))
    p.grad = torch.ones(3)
    out = _round_trip(p)
    assert isinstance(out, torch.nn.Parameter) and torch.equal(out.grad, p.grad)
    expanded = _round_trip(torch.ones(3, 1).expand(3, 4))  # stride 0: arrives contiguous
    assert torch.equal(expanded, torch.ones(3, 4))
    arr = _round_trip(np.arange(6, dtype=np.float32).reshape(2, 3))
    assert isinstance(arr, np.ndarray) and arr.tolist() == [[0, 1, 2], [3, 4, 5]]
    assert _round_trip(np.float64(2.5)) == 2.5 and type(_round_trip(np.int64(3))) is np.int64


def test_a_lying_object_arrives_as_plain_data():
    class Always(tuple):
        def __eq__(self, other):
            return True

        def __iter__(self):
            return iter((9, 9))

    out = _round_trip(Always((1, 2)))
    assert type(out) is tuple and out == (1, 2) and out != (0, 0)

    class Mine:
        pass

    gen = _round_trip((i for i in range(3)))
    assert isinstance(gen, wire.Unsendable) and type(gen).__name__ == "generator"
    assert type(_round_trip(Mine())).__name__ == "Mine"


@pytest.mark.parametrize("node,blobs", [
    (["tensor", {"dtype": "float32", "shape": [10**6]}, 0], [memoryview(b"1234")]),      # fewer bytes than it says
    (["tensor", {"dtype": "object", "shape": [1]}, 0], [memoryview(b"12345678")]),       # not a tensor dtype
    (["tensor", {"dtype": "float32", "shape": [-1]}, 0], [memoryview(b"")]),
    (["ndarray", "|O", [1], 0], [memoryview(b"12345678")]),
    (["pickle", "cos\nsystem\n"], []),                                                    # no such tag
    (["list", [["int", "1"]] * 3 + [["bytes", 5]]], []),                                  # no such blob
    (["int", "1" * 5000], []),
    (["str", 5], []),
    (["dict", [["int", "1"]]], []),
    ("not a node", []),
])
def test_malformed_answers_are_refused(node, blobs):
    with pytest.raises(wire.ProtocolError):
        wire.decode(node, blobs)


def test_nesting_is_bounded():
    node = ["none"]
    for _ in range(wire.MAX_DEPTH + 5):
        node = ["list", [node]]
    with pytest.raises(wire.ProtocolError, match="deeply nested"):
        wire.decode(node, [])


def test_frames_refuse_garbage_and_oversized_messages():
    def pipe_with(data: bytes = b"", frame=None):
        r, w = os.pipe()
        os.write(w, data)
        if frame:
            wire.write_frame(w, *frame)
        return r, w

    r, w = pipe_with(b"XXXX" + b"\0" * 12)
    with pytest.raises(wire.ProtocolError, match="marker"):
        wire.read_frame(r, time.monotonic() + 5)
    r, w = pipe_with(frame=({"op": "x"}, [b"a" * 100]))
    with pytest.raises(wire.ProtocolError, match="larger than allowed"):
        wire.read_frame(r, time.monotonic() + 5, max_bytes=10)
    r, w = pipe_with(frame=({"op": "x"}, [b"a" * 100]))
    assert wire.read_frame(r, time.monotonic() + 5)[0]["op"] == "x"
    with pytest.raises(wire.KernelTimeout):
        wire.read_frame(r, time.monotonic() + 0.2)
    os.close(w)
    with pytest.raises(wire.KernelGone):
        wire.read_frame(r, time.monotonic() + 5)


def test_exceptions_are_rebuilt_with_their_type_and_message():
    e = wire.remote_exception("KeyError", "KeyError", ("x",), "'x'")
    assert type(e) is KeyError and str(e) == "'x'"
    e = wire.remote_exception("UnicodeDecodeError", "UnicodeError", ("utf-8",), "'utf-8' codec can't decode")
    assert isinstance(e, UnicodeError) and type(e).__name__ == "UnicodeDecodeError" and "can't decode" in str(e)
    e = wire.remote_exception("LinAlgError", "RuntimeError", ("singular",), "singular", "it happened at line 3: `x`")
    assert isinstance(e, RuntimeError) and str(e) == "singular" and e.llmlab_frame.startswith("it happened")
    assert issubclass(wire.KernelGone, BaseException) and not issubclass(wire.KernelGone, Exception)


# ----------------------------------------------------------------------------------- a kernel (no sandbox)


@pytest.fixture(scope="module")
def kernel():
    k = Kernel([sys.executable, "-m", "llmlab.course.worker"], cwd=str(ROOT))
    k.deadline = time.monotonic() + 120
    k.request({"op": "hello"})
    yield k
    k.close()


def _define(kernel, code: str) -> None:
    kernel.deadline = time.monotonic() + 60
    reply, _ = kernel.request({"op": "run", "code": code})
    assert reply["ok"], reply


def test_in_place_changes_come_back(kernel):
    _define(kernel, "def scale(x, out, counts):\n    x.mul_(2)\n    out.append(len(out))\n    counts['a'] += 1\n    return x\n")
    x, out, counts = torch.ones(3), [7], collections.Counter(a=1)
    got = invoke(RemoteFunction(kernel, "scale"), (x, out, counts), {}, hold=True)
    assert torch.equal(x, torch.full((3,), 2.0)) and out == [7, 1] and counts == {"a": 2}
    assert got is x  # the function returned its argument: the grader gets its own object back


def test_held_objects_stay_in_the_kernel_between_calls(kernel):
    _define(kernel, "import torch\ndef step(model, opt, x):\n    opt.zero_grad()\n    model(x).sum().backward()\n"
                    "    opt.step()\n    return len(opt.state)\n")
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    fn = RemoteFunction(kernel, "step")
    w0 = model.weight.detach().clone()
    assert invoke(fn, (model, opt, torch.ones(1, 3)), {}, hold=True) == 2
    assert not torch.equal(model.weight, w0) and model.weight.grad is not None  # parameters and .grad came back
    w1 = model.weight.detach().clone()
    assert invoke(fn, (model, opt, torch.ones(1, 3)), {}, hold=True) == 2        # Adam's state lived on in the kernel
    assert not torch.equal(model.weight, w1)
    kernel.request({"op": "release"})


def test_exceptions_and_stubs(kernel):
    _define(kernel, "def stub(x):\n    raise NotImplementedError\n\ndef picky(x):\n    raise ValueError(f'bad {x}')\n"
                    "class Mine(Exception):\n    pass\n\ndef odd(x):\n    raise Mine('odd one')\n")
    with pytest.raises(NotImplementedError):
        RemoteFunction(kernel, "stub")(1)
    with pytest.raises(ValueError, match="bad 3") as info:
        RemoteFunction(kernel, "picky")(3)
    assert "line 5" in info.value.llmlab_frame
    with pytest.raises(Exception, match="odd one") as info:
        RemoteFunction(kernel, "odd")(1)
    assert type(info.value).__name__ == "Mine"
    reply, _ = kernel.request({"op": "describe", "name": "picky"})
    assert reply["exists"] and reply["callable"] and not reply["in_package"]
    _define(kernel, "from llmlab.nn.attention import softmax as borrowed")
    assert kernel.request({"op": "describe", "name": "borrowed"})[0]["in_package"]


def test_a_harness_runs_beside_the_function(kernel):
    from llmlab.grading.compression import loss_and_grad

    _define(kernel, "def kd(s, t, T):\n    return ((s - t) ** 2).mean()\n")
    s, t = torch.randn(2, 3, dtype=torch.float64), torch.randn(2, 3, dtype=torch.float64)
    loss, grad = invoke(RemoteFunction(kernel, "kd"), (s, t, 2.0), {}, via=loss_and_grad)
    assert torch.allclose(grad, 2 * (s - t) / s.numel())


def test_a_kernel_that_dies_or_hangs_or_garbles_is_named():
    for code, failure in (("import os\nos._exit(3)", wire.KernelGone),
                          ("while True:\n    pass", wire.KernelTimeout),
                          ("import os\nos.write(4, b'LLMW' + bytes(12) + b'garbage')", wire.ProtocolError)):
        k = Kernel([sys.executable, "-m", "llmlab.course.worker"], cwd=str(ROOT))
        try:
            k.deadline = time.monotonic() + 60
            k.request({"op": "hello"})
            k.deadline = time.monotonic() + 3
            with pytest.raises(failure):
                k.request({"op": "run", "code": code})
            with pytest.raises(failure):  # and stays failed
                k.request({"op": "hello"})
        finally:
            k.close()


# ------------------------------------------------------------------- the same verdict in both places


def _verdict(check, fn) -> str:
    try:
        with contextlib.redirect_stdout(io.StringIO()) as out:
            check(fn)
        return out.getvalue().strip()
    except ExerciseFailure as e:
        return str(e)


# One check per kind of argument that crosses: tensors, held tables, models and optimisers, generators,
# in-place writes, a harness with a backward pass, ranks spawned from the kernel, a toy model object.
SAMPLE = [("attention", "check_softmax"), ("tokenizers", "check_apply_merges"), ("training", "check_train_step"),
          ("training", "check_get_batch"), ("training", "check_clip_grad_norm"), ("fast_inference", "check_write_kv"),
          ("compression", "check_kd_loss"), ("parallelism", "check_row_parallel_linear"),
          ("transformer", "check_greedy_generate"), ("chinese_segmentation", "check_viterbi"),
          ("quantization", "check_gptq_update"), ("language_models", "check_count_ngrams"),
          ("parallelism", "check_shard_range"), ("interview_bank", "check_softmax"), ("tokenizers", "check_decode")]


@pytest.mark.parametrize("module,check", SAMPLE)
def test_a_check_through_the_kernel_gives_the_notebook_verdict(kernel, module, check):
    """The reference passes and each catalogued mistake gets its hint, as ``tests/test_mutants.py`` shows
    they do in the learner's notebook."""
    entries = catalogue(importlib.import_module(f"tests.mutants.{module}"))
    grader = getattr(importlib.import_module(f"llmlab.grading.{module}"), check)
    _define(kernel, f"import tests.mutants.{module} as M")
    cases = [(f"M.REFERENCE[{check!r}]", "✅ ")]
    _define(kernel, "from tests.mutants import catalogue")
    cases += [(f"catalogue(M)[{i}][1]", hint) for i, (c, _, hint, _) in enumerate(entries) if c == check][:2]
    for expr, expected in cases:
        _define(kernel, f"fn = {expr}")
        kernel.deadline = time.monotonic() + 300
        verdict = _verdict(grader, RemoteFunction(kernel, "fn"))
        kernel.request({"op": "release"})
        assert verdict.startswith(expected) if expected == "✅ " else expected in verdict, (expr, verdict)


# ------------------------------------------------------------------------------------- the rebuilt notebook


@pytest.mark.parametrize("path", sorted((ROOT / "solutions").glob("*.ipynb")), ids=lambda p: p.stem)
def test_every_solution_check_cell_is_understood(path):
    nb = notebooks.load(path)
    steps = rebuild.plan(nb, nb)
    checks = [s for s in steps if s.kind == "check"]
    assert [s.check_id for s in checks] == [c.id for c in notebooks.graded_checks(nb)]
    for s in checks:
        mod = importlib.import_module(s.module)
        assert callable(getattr(mod, s.function)) and s.names
    assert all(s.matched == "id" for s in steps if s.kind == "exercise")


def test_only_the_exercise_code_of_a_submission_is_used():
    solution = notebooks.load(ROOT / "solutions" / "00_start_here.ipynb")
    sub = json.loads(json.dumps(solution))
    for cell in sub["cells"]:
        if "check" in cell["metadata"].get("tags", []):
            cell["source"], cell["metadata"]["tags"] = "pass", ["raises-exception"]
        if "exercise" in cell["metadata"].get("tags", []):
            cell["source"] = "# mine\n" + cell["source"]
    sub["cells"].insert(0, {"cell_type": "code", "id": "x", "metadata": {"grade": {"id": "00.normalize", "points": 99}},
                            "source": "1", "outputs": [], "execution_count": None})
    steps = rebuild.plan(solution, sub)
    assert [s.source.startswith("# mine") for s in steps if s.kind == "exercise"] == [True, True]
    assert [(s.check_id, s.points) for s in steps if s.kind == "check"] == [("00.char_and_byte_counts", 1), ("00.normalize", 1)]
    assert all("pass" != s.source for s in steps)
    for cell in sub["cells"]:  # no ids: matched by order among the cells tagged exercise
        cell.pop("id", None)
    assert [s.matched for s in rebuild.plan(solution, sub) if s.kind == "exercise"] == ["order", "order"]
    empty = rebuild.plan(solution, {"cells": []})
    assert all(s.matched == "stub" and "raise NotImplementedError" in s.source for s in empty if s.kind == "exercise")


def test_check_cells_must_have_the_expected_form():
    with pytest.raises(ValueError, match="one llmlab.grading check"):
        rebuild.parse_check("print('hi')", {})
    with pytest.raises(ValueError):
        rebuild.parse_check("grade.check_x(lambda: 1)", {"grade": ("llmlab.grading.start_here", None)})


@pytest.mark.parametrize("cell,notebook,flagged", [
    ("from llmlab.nn.attention import softmax", [], True),
    ("from llmlab.nn.attention import softmax as s\nsoftmax = s", [], True),
    ("import llmlab.nn.attention as A\nsoftmax = A.softmax", [], True),
    ("softmax = attention.softmax", ["from llmlab.nn import attention"], True),
    ("def softmax(x, dim=-1):\n    return llmlab.nn.attention.softmax(x, dim)", ["import llmlab.nn.attention"], True),
    ("from llmlab.nn.attention import causal_mask\ndef softmax(x, dim=-1):\n    return x.softmax(dim)", [], False),
    ("def softmax(x, dim=-1):\n    return x.softmax(dim)", ["from llmlab.nn import attention"], False),
])
def test_using_the_reference_is_recognised(cell, notebook, flagged):
    assert bool(rebuild.uses_reference(cell, "softmax", notebook)) == flagged


# ---------------------------------------------------------------------------------------------- sandbox


def test_the_sandbox_hides_what_a_kernel_must_not_read(tmp_path):
    box = sandbox.choose("auto", [str(tmp_path)])
    if box.kind != "bwrap":
        pytest.skip(box.note)
    (tmp_path / "secret.txt").write_text("classmate")
    limits = sandbox.Limits(memory_bytes=4 * 2**30, cpu_seconds=120)
    probe = ("import os, json, llmlab\n"
             "def can(p):\n    return os.path.exists(p)\n"
             f"print(json.dumps([can({str(tmp_path / 'secret.txt')!r}), can({str(ROOT / 'solutions')!r} + '/00_start_here.ipynb'),"
             f" can({str(ROOT / 'tests')!r}), can({str(Path.home())!r} + '/.bashrc'), can('/run'), os.getcwd(),"
             " os.getuid(), open('/tmp/work/x', 'w').write('ok'), os.access(llmlab.__file__, os.W_OK)]))")
    argv = sandbox.bwrap_command(box, limits, sandbox.kernel_env(limits, inside=True),
                                 [sys.executable, "-c", "import os\nif os.getuid() == 0:\n    os.setgid(65534); os.setuid(65534)\n" + probe])
    import subprocess

    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    secret, solutions, tests, bashrc, run, cwd, uid, wrote, writable = json.loads(proc.stdout)
    assert (secret, solutions, tests, bashrc, writable) == (False, False, False, False, False)
    assert cwd == sandbox.SCRATCH and wrote == 2
    assert uid != 0


@pytest.mark.parametrize("kwargs,error", [
    (dict(memory_bytes=0, cpu_seconds=10), ValueError), (dict(memory_bytes=2**30, cpu_seconds=-1), ValueError),
    (dict(memory_bytes=1.5, cpu_seconds=10), TypeError), (dict(memory_bytes=2**30, cpu_seconds=10, threads=0), ValueError),
])
def test_limits_reject_nonsense(kwargs, error):
    with pytest.raises(error, match="must be"):
        sandbox.Limits(**kwargs)


def test_choose_rejects_an_unknown_sandbox():
    with pytest.raises(ValueError, match="sandbox must be one of"):
        sandbox.choose("chroot")
