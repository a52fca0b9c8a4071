"""The interview bank: its schema (both languages, one right answer, valid links, unique ids), every
answer accepted and every catalogued wrong answer rejected with its own explanation, code drills graded
by the course's checks, and the mock interview."""
import json
import re
import time
from pathlib import Path

import pytest

from llmlab import interview
from llmlab.course.notebooks import read
from tests.mutants import catalogue
from tests.test_mutants import CATALOGUES

ROOT = Path(__file__).resolve().parents[1]
BANK = interview.load_bank()
CJK = re.compile(r"[\u4e00-\u9fff]")


def _sections() -> dict[str, set[int]]:
    found = {}
    for path in (ROOT / "solutions").glob("*.ipynb"):
        text = "\n".join(c.source for c in read(path).cells if c.cell_type == "markdown")
        found[path.stem] = {int(n) for n in re.findall(r"^## (\d+)\.", text, flags=re.M)}
    return found


def test_the_bank_is_large_and_covers_every_topic():
    assert len(BANK) >= 120
    by_topic = {t: sum(q.topic == t for q in BANK.values()) for t in interview.TOPICS}
    assert all(n >= 3 for n in by_topic.values()), by_topic
    assert {q.kind for q in BANK.values()} == set(interview.KINDS)
    assert {q.difficulty for q in BANK.values()} == {1, 2, 3}


def test_every_question_is_bilingual():
    for q in BANK.values():
        texts = [q.question, q.explanation] + [o["text"] for o in q.options] + [o["why"] for o in q.options] \
            + [m["why"] for m in q.mistakes] + ([q.unit] if q.unit else [])
        for t in (q.question, q.explanation):
            assert CJK.search(t["zh"]), f"{q.id}: the Chinese text has no Chinese"
            assert t["en"] != t["zh"], q.id
        assert all(t["en"].strip() and t["zh"].strip() for t in texts), q.id


def test_every_link_points_at_a_section_that_exists():
    sections = _sections()
    for q in BANK.values():
        stem, n = q.link.split("#")
        assert stem in sections, f"{q.id}: no notebook {stem}"
        assert int(n) in sections[stem], f"{q.id}: {stem} has no section {n} (it has {sorted(sections[stem])})"


def _section_texts() -> dict[tuple[str, int], str]:
    """(notebook, section number) -> the text (markdown and code) from its "## N." heading to the next one."""
    out = {}
    for path in (ROOT / "solutions").glob("*.ipynb"):
        current = None
        for cell in read(path).cells:
            for line in cell.source.splitlines():
                m = re.match(r"## (\d+)\.", line) if cell.cell_type == "markdown" else None
                if m:
                    current = (path.stem, int(m.group(1)))
                    out[current] = ""
                if current:
                    out[current] += line.lower().replace("-", " ") + "\n"
    return out


def test_every_link_points_at_a_section_that_teaches_the_question():
    """The linked section names one of the question's tags (hyphens read as spaces): it teaches the topic."""
    texts = _section_texts()
    wrong = []
    for q in BANK.values():
        stem, n = q.link.split("#")
        text = texts.get((stem, int(n)), "")
        if not any(tag.lower().replace("-", " ") in text for tag in q.tags):
            wrong.append(f"{q.id} -> {q.link} {list(q.tags)}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_choice_questions_accept_the_right_option_only_and_explain_each(lang):
    for q in interview.select(kind="choice"):
        for i, option in enumerate(q.options):
            verdict = interview.evaluate(q, interview.LETTERS[i], lang)
            assert verdict.correct == option["correct"], q.id
            assert verdict.message.startswith(option["why"][lang]), q.id


def test_numeric_questions_accept_the_answer_and_name_each_slip():
    for q in interview.select(kind="numeric"):
        assert interview.evaluate(q, q.answer).correct, q.id
        assert interview.evaluate(q, q.answer * (1 + q.tolerance / 2)).correct, q.id
        for m in q.mistakes:
            verdict = interview.evaluate(q, m["value"], "zh")
            assert not verdict.correct and verdict.message == m["why"]["zh"], (q.id, m["value"])


def test_code_drills_are_graded_by_the_course_checks():
    drills = interview.select(kind="code")
    assert drills
    for q in drills:
        module, check = q.check.split(".")
        reference = CATALOGUES[module].REFERENCE[check]
        assert interview.evaluate(q, reference).correct, q.id
        wrong = next(fn for c, fn, _, _ in catalogue(CATALOGUES[module]) if c == check)
        assert not interview.evaluate(q, wrong).correct, q.id


def test_answer_prints_the_verdict(capsys):
    q = interview.select(kind="choice")[0]
    right = interview.LETTERS[[o["correct"] for o in q.options].index(True)]
    assert interview.answer(q.id, right.lower()) is True
    assert capsys.readouterr().out.startswith(f"✅ {q.id}:")


@pytest.mark.parametrize("call,exc,msg", [
    (lambda: interview.answer("nope-000", "A"), ValueError, "no question"),
    (lambda: interview.evaluate(interview.select(kind="choice")[0], "Z"), ValueError, "answer with a letter"),
    (lambda: interview.evaluate(interview.select(kind="numeric")[0], "12"), TypeError, "answer with a number"),
    (lambda: interview.evaluate(interview.select(kind="code")[0], 3), TypeError, "answered with your function"),
    (lambda: interview.select(topic="cooking"), ValueError, "unknown topic"),
    (lambda: interview.set_language("fr"), ValueError, "'en' or 'zh'"),
    (lambda: interview.MockInterview(n=0), ValueError, "n must be >= 1"),
    (lambda: interview.MockInterview(n=10**6), ValueError, "only"),
])
def test_bad_input_is_rejected_clearly(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call()


def _valid_choice() -> dict:
    both = {"en": "x", "zh": "中"}
    return {"id": "lm-999", "kind": "choice", "topic": "lm_basics", "difficulty": 1, "tags": ["t"],
            "link": "01_language_models#1", "question": both, "explanation": both,
            "options": [{"text": both, "correct": True, "why": both}, {"text": both, "correct": False, "why": both}]}


@pytest.mark.parametrize("change,msg", [
    (lambda q: q.update(id="LM_1"), "id must look like"),
    (lambda q: q["question"].pop("zh"), "'en' and 'zh'"),
    (lambda q: q["options"][1].update(correct=True), "exactly one option"),
    (lambda q: q.update(topic="cooking"), "unknown topic"),
    (lambda q: q.update(link="quantization"), "link must look like"),
    (lambda q: q.update(kind="numeric", answer=10, tolerance=0.01, unit={"en": "B", "zh": "字节"},
                        mistakes=[{"value": 10.05, "why": {"en": "x", "zh": "中"}}]), "within the tolerance"),
])
def test_the_schema_rejects_malformed_questions(change, msg):
    q = _valid_choice()
    interview.validate(json.loads(json.dumps(q)))
    change(q)
    with pytest.raises(ValueError, match=msg):
        interview.validate(q)


def test_mock_interview_scores_and_times_out():
    mock = interview.MockInterview(n=4, minutes=5, seed=3, lang="zh")
    assert [q.id for q in mock.questions] == [q.id for q in interview.MockInterview(n=4, seed=3).questions]
    for q in list(mock.questions):
        mock.submit(q.answer if q.kind == "numeric" else interview.LETTERS[[o["correct"] for o in q.options].index(True)])
    assert mock.done and mock.report().startswith("得分 4/4")
    late = interview.MockInterview(n=2, minutes=1e-4, seed=0)
    time.sleep(0.01)
    assert late.done and "Review" in late.report()
    with pytest.raises(RuntimeError, match="over"):
        late.submit("A")


def test_the_widgets_build():
    box = interview.quiz(lang="zh", topic="quantization")
    assert "quant-" in box.children[1].value
    mock = interview.mock_interview(n=2, minutes=0.01, seed=1)
    assert "1/2" in mock.children[1].value


def test_withheld_graded_items_give_nothing_away():
    """A class run's kernel reads this copy of the graded items: still valid questions, no answers."""
    items = json.loads(interview.GRADED_FILE.read_text(encoding="utf-8"))
    withheld = interview.withhold(items)
    text = json.dumps(withheld, ensure_ascii=False)
    for real, item in zip(items, withheld):
        q = interview.validate(item)
        assert q.question == real["question"] and q.kind == real["kind"]
        assert real["explanation"]["en"] not in text and real["explanation"]["zh"] not in text
        if real["kind"] == "numeric":
            assert q.answer != real["answer"] and not q.mistakes
        if real["kind"] == "choice":
            assert all(o["why"]["en"] not in text for o in real["options"])
