"""Checks for notebook 13_interview_bank: each graded item is a question of the bank (``llmlab.interview``),
answered by a function that returns the answer (a number, an option's letter) or, for a code drill, is it.
A wrong answer gets the explanation of that very mistake: the option's own, or the catalogued numeric slip's."""
from __future__ import annotations

import contextlib
import io
import re

from llmlab import interview
from llmlab.grading.core import Check, ExerciseFailure


def _item(check_id: str, qid: str, fn) -> None:
    c = Check(check_id, fn)
    q = interview.question(qid)
    if q.kind == "code":
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out):  # the course's own check of this function, reported under this id
                interview.drill_check(q)(fn)
        except ExerciseFailure as e:
            c.fail(e.what, e.hint)
        c.passed += int(re.search(r"(\d+) checks passed", out.getvalue()).group(1))
        c.done()
        return
    value = c.call()
    try:
        verdict = interview.evaluate(q, value)
    except (TypeError, ValueError) as e:
        c.fail(str(e), "return the answer itself: a number in the unit asked for, or an option's letter")
    c.expect(verdict.correct, f"{qid}: {value!r} is not the answer", verdict.message)
    c.done()


def check_perplexity(fn) -> None:
    _item("13.perplexity", "lm-901", fn)


def check_bpe_merges(fn) -> None:
    _item("13.bpe_merges", "tok-901", fn)


def check_score_memory(fn) -> None:
    _item("13.score_memory", "attn-901", fn)


def check_kv_cache(fn) -> None:
    _item("13.kv_cache", "inf-901", fn)


def check_speculative_tokens(fn) -> None:
    _item("13.speculative_tokens", "inf-902", fn)


def check_int4_memory(fn) -> None:
    _item("13.int4_memory", "quant-901", fn)


def check_pipeline_bubble(fn) -> None:
    _item("13.pipeline_bubble", "par-901", fn)


def check_megatron_all_reduce(fn) -> None:
    _item("13.megatron_all_reduce", "par-902", fn)


def check_bf16(fn) -> None:
    _item("13.bf16", "mp-901", fn)


def check_softmax(fn) -> None:
    _item("13.softmax", "attn-902", fn)
