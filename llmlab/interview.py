"""The interview bank: bilingual (中文 / English) questions on everything the course teaches, checked on the spot.

Questions live in ``llmlab/resources/interview_*.json`` and are of three kinds:

* ``choice``: one correct option among 3-5; every option carries its own explanation of why it is right or wrong;
* ``numeric``: a number within a relative tolerance (KV-cache bytes, an int4 model's memory, a pipeline's bubble),
  with the wrong numbers that common slips produce, each mapped to a hint that names the slip;
* ``code``: a short drill whose check is one of the course's own graders (``llmlab.grading``).

Use ``answer(id, value)`` anywhere (it prints the verdict and returns True or False), ``quiz()`` for a widget
that filters by language, topic and difficulty, and ``mock_interview(n, minutes)`` for a timed round.
"""
from __future__ import annotations

import importlib
import json
import math
import numbers
import random
import re
import threading
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import llmlab.validate as checks  # not "validate": this module's validate() checks a question

TOPICS = ("lm_basics", "pretraining_finetuning", "tokenization", "chinese_segmentation", "attention_transformers",
          "long_context", "evaluation", "inference_speed", "quantization", "pruning", "distillation",
          "mixed_precision", "parallelism", "lora_transfer", "overfitting", "interpretability", "robustness",
          "privacy", "energy")
KINDS = ("choice", "numeric", "code")
LANGUAGES = ("en", "zh")
LETTERS = "ABCDEF"
_RESOURCES = Path(__file__).resolve().parent / "resources"
_language = "en"


@dataclass(frozen=True)
class Question:
    id: str
    kind: str
    topic: str
    difficulty: int
    tags: tuple[str, ...]
    link: str  # "NN_notebook#section" ("07a_perplexity#3" for a topic taught in parts)
    question: dict[str, str]
    explanation: dict[str, str]
    options: tuple[dict, ...] = ()  # choice: {"text": {...}, "correct": bool, "why": {...}}
    answer: float | None = None  # numeric
    tolerance: float = 0.0  # numeric, relative
    unit: dict[str, str] = field(default_factory=dict)
    mistakes: tuple[dict, ...] = ()  # numeric: {"value": float, "why": {...}}
    check: str = ""  # code: "<module>.check_<name>" in llmlab.grading
    signature: str = ""  # code

    def __post_init__(self):
        # validate() checks a question read from JSON, with messages that name its id; this catches a
        # Question built by hand with a field of the wrong kind
        if not isinstance(self.id, str) or not re.fullmatch(r"[a-z]+-\d{3}", self.id):
            raise (ValueError if isinstance(self.id, str) else TypeError)(
                f"id must look like 'quant-007', got {self.id!r}")
        checks.choice("kind", self.kind, KINDS)
        checks.choice("topic", self.topic, TOPICS)
        checks.integer("difficulty", self.difficulty, 1, 3)
        _sequence("tags", self.tags)
        if not 1 <= len(self.tags) <= 6 or not all(isinstance(t, str) and t for t in self.tags):
            raise ValueError(f"tags must hold 1 to 6 non-empty strings, got {self.tags!r}")
        if not isinstance(self.link, str) or not re.fullmatch(r"\d\d[a-z]?_[a-z_]+#\d+", self.link):
            raise (ValueError if isinstance(self.link, str) else TypeError)(
                f"link must look like '09_quantization#3', got {self.link!r}")
        _texts("question", self.question)
        _texts("explanation", self.explanation)
        _sequence("options", self.options)
        _sequence("mistakes", self.mistakes)
        if not isinstance(self.unit, dict):
            raise TypeError(f"unit must be a dict of 'en' and 'zh' texts, got {type(self.unit).__name__}")
        for name in ("check", "signature"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"{name} must be a str, got {type(getattr(self, name)).__name__}")
        if self.answer is not None:
            checks.real("answer", self.answer)
        checks.real("tolerance", self.tolerance, minimum=0.0, below=0.5)
        if not all(isinstance(o, dict) for o in (*self.options, *self.mistakes)):
            raise TypeError("options and mistakes must hold dicts")
        if self.kind == "choice" and (not 2 <= len(self.options) <= len(LETTERS)
                                      or sum(o.get("correct") is True for o in self.options) != 1):
            raise ValueError(f"options must be 2 to {len(LETTERS)} options, exactly one of them correct, "
                             f"for a choice question")
        if self.kind == "numeric":
            if self.answer is None:
                raise ValueError("answer must be a number for a numeric question, got None")
            _texts("unit", self.unit)
        if self.kind == "code" and not (self.check and self.signature):
            raise ValueError("check and signature must be given for a code drill")

    def text(self, lang: str | None = None) -> str:
        """The question as plain text: options lettered A, B, ...; the unit of a number; the signature of a drill."""
        lang = _lang(lang)
        lines = [f"[{self.id}] {self.question[lang]}"]
        if self.kind == "choice":
            lines += [f"  {LETTERS[i]}. {o['text'][lang]}" for i, o in enumerate(self.options)]
        elif self.kind == "numeric":
            lines.append(f"  ({'单位' if lang == 'zh' else 'unit'}: {self.unit[lang]})")
        else:
            lines.append(f"  {self.signature}")
        return "\n".join(lines)


def _sequence(name: str, value) -> None:
    if not isinstance(value, (tuple, list)):
        raise TypeError(f"{name} must be a tuple, got {type(value).__name__}")


def _texts(name: str, value) -> None:
    """A dict of non-empty 'en' and 'zh' texts."""
    if not isinstance(value, dict):
        raise TypeError(f"{name} must be a dict of 'en' and 'zh' texts, got {type(value).__name__}")
    if any(not isinstance(value.get(k), str) or not value[k].strip() for k in LANGUAGES):
        raise ValueError(f"{name} needs non-empty 'en' and 'zh' texts, got {value!r:.80}")


@dataclass(frozen=True)
class Verdict:
    correct: bool
    message: str  # the explanation when right; the hint for this particular mistake when wrong

    def __post_init__(self):
        checks.flag("correct", self.correct)
        if not isinstance(self.message, str) or not self.message:
            raise (ValueError if isinstance(self.message, str) else TypeError)(
                f"message must be a non-empty str, got {self.message!r}")


def _lang(lang: str | None) -> str:
    lang = _language if lang is None else lang
    if lang not in LANGUAGES:
        raise ValueError(f"lang must be 'en' or 'zh', got {lang!r}")
    return lang


def set_language(lang: str) -> None:
    """The default language of ``answer``, ``ask`` and the widgets: 'en' or 'zh'."""
    global _language
    if not isinstance(lang, str):
        raise TypeError(f"lang must be 'en' or 'zh', got {type(lang).__name__}")
    _language = _lang(lang)


# ------------------------------------------------------------------------------------------------ loading


def _bilingual(qid: str, where: str, value) -> dict[str, str]:
    if not isinstance(value, dict) or any(not isinstance(value.get(k), str) or not value[k].strip() for k in LANGUAGES):
        raise ValueError(f"{qid}: {where} needs non-empty 'en' and 'zh' texts, got {value!r:.80}")
    return value


def validate(item: dict) -> Question:
    """A question from its JSON object; ValueError naming the id and the field for anything malformed."""
    if not isinstance(item, dict):
        raise TypeError(f"item must be a question's JSON object (a dict), got {type(item).__name__}")
    qid = item.get("id")
    if not isinstance(qid, str) or not re.fullmatch(r"[a-z]+-\d{3}", qid):
        raise ValueError(f"item's question id must look like 'quant-007', got {qid!r}")
    kind, topic, difficulty = item.get("kind"), item.get("topic"), item.get("difficulty")
    if kind not in KINDS:
        raise ValueError(f"{qid}: kind must be one of {KINDS}, got {kind!r}")
    if topic not in TOPICS:
        raise ValueError(f"{qid}: unknown topic {topic!r}")
    if difficulty not in (1, 2, 3):
        raise ValueError(f"{qid}: difficulty must be 1, 2 or 3, got {difficulty!r}")
    tags = item.get("tags")
    if not isinstance(tags, list) or not 1 <= len(tags) <= 6 or not all(isinstance(t, str) and t for t in tags):
        raise ValueError(f"{qid}: tags must be a list of 1 to 6 strings")
    link = item.get("link")
    if not isinstance(link, str) or not re.fullmatch(r"\d\d[a-z]?_[a-z_]+#\d+", link):
        raise ValueError(f"{qid}: link must look like '09_quantization#3', got {link!r}")
    common = dict(id=qid, kind=kind, topic=topic, difficulty=difficulty, tags=tuple(tags), link=link,
                  question=_bilingual(qid, "question", item.get("question")),
                  explanation=_bilingual(qid, "explanation", item.get("explanation")))
    if kind == "choice":
        options = item.get("options")
        if not isinstance(options, list) or not 2 <= len(options) <= len(LETTERS):
            raise ValueError(f"{qid}: a choice question needs 2 to {len(LETTERS)} options")
        for i, o in enumerate(options):
            if not isinstance(o, dict) or not isinstance(o.get("correct"), bool):
                raise ValueError(f"{qid}: option {LETTERS[i]} needs 'text', 'correct' (true/false) and 'why'")
            _bilingual(qid, f"option {LETTERS[i]}'s text", o.get("text"))
            _bilingual(qid, f"option {LETTERS[i]}'s why", o.get("why"))
        if sum(o["correct"] for o in options) != 1:
            raise ValueError(f"{qid}: exactly one option must be correct")
        return Question(**common, options=tuple(options))
    if kind == "numeric":
        ans, tol = item.get("answer"), item.get("tolerance")
        if not _is_number(ans) or not _is_number(tol) or not 0 <= tol < 0.5:
            raise ValueError(f"{qid}: a numeric question needs a number 'answer' and a 'tolerance' in [0, 0.5)")
        mistakes = item.get("mistakes", [])
        for m in mistakes:
            if not isinstance(m, dict) or not _is_number(m.get("value")):
                raise ValueError(f"{qid}: every mistake needs a number 'value' and a 'why'")
            _bilingual(qid, "a mistake's why", m.get("why"))
            if _within(m["value"], ans, tol):
                raise ValueError(f"{qid}: mistake {m['value']} is within the tolerance of the answer {ans}")
        return Question(**common, answer=float(ans), tolerance=float(tol),
                        unit=_bilingual(qid, "unit", item.get("unit")), mistakes=tuple(mistakes))
    check, signature = item.get("check"), item.get("signature")
    if not isinstance(check, str) or not re.fullmatch(r"[a-z_]+\.check_[a-z0-9_]+", check):
        raise ValueError(f"{qid}: a code drill needs 'check' like 'attention.check_softmax', got {check!r}")
    if not isinstance(signature, str) or not signature.startswith("def "):
        raise ValueError(f"{qid}: a code drill needs the function's 'signature' ('def name(...):')")
    return Question(**common, check=check, signature=signature)


def _is_number(x) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(x)


def _within(value: float, target: float, tolerance: float) -> bool:
    return abs(value - target) <= tolerance * abs(target) + 1e-12


@lru_cache(maxsize=None)
def _load(folder: str) -> dict[str, Question]:
    bank: dict[str, Question] = {}
    files = sorted(Path(folder).glob("interview_*.json"))
    if not files:
        raise FileNotFoundError(f"no interview_*.json in {folder}")
    for path in files:
        items = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(items, list):
            raise ValueError(f"{path.name}: expected a JSON list of questions")
        for item in items:
            q = validate(item)
            if q.id in bank:
                raise ValueError(f"{path.name}: duplicate question id {q.id}")
            bank[q.id] = q
    return bank


# The questions that notebook 13 grades. A class run's kernel reads a copy with their answers withheld.
GRADED_FILE = _RESOURCES / "interview_notebook.json"
_WITHHELD = {"en": "(withheld while a class run grades this notebook)", "zh": "（课堂评分运行期间不提供）"}


def withhold(items: list[dict]) -> list[dict]:
    """``items`` with everything that gives an answer away replaced by placeholders (still valid questions,
    so a notebook that shows them keeps running): a numeric answer becomes 1 with no catalogued slips, a
    choice question's first option is marked correct, every explanation and "why" says it is withheld."""
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise TypeError(f"items must be a list of question objects (dicts), got {type(items).__name__}")
    out = []
    for item in items:
        item = {k: v for k, v in item.items() if k not in ("answer", "tolerance", "mistakes", "explanation")}
        item["explanation"] = dict(_WITHHELD)
        if item.get("kind") == "numeric":
            item.update(answer=1.0, tolerance=0.0, mistakes=[])
        elif item.get("kind") == "choice":
            item["options"] = [{"text": o["text"], "correct": i == 0, "why": dict(_WITHHELD)}
                               for i, o in enumerate(item["options"])]
        out.append(item)
    return out


def load_bank(folder: str | Path | None = None) -> dict[str, Question]:
    """Every question, by id, from the ``interview_*.json`` files of ``folder`` (default: llmlab's resources)."""
    return dict(_load(str(checks.path("folder", folder) if folder is not None else _RESOURCES)))


def question(qid: str) -> Question:
    """The question of id ``qid`` (e.g. 'lm-001'); ValueError for an id the bank does not have."""
    if not isinstance(qid, str):
        raise TypeError(f"qid must be a question id (a str such as 'lm-001'), got {type(qid).__name__}")
    bank = load_bank()
    if qid not in bank:
        close = [k for k in bank if k.split("-")[0] == qid.split("-")[0]][:5]
        raise ValueError(f"no question {qid!r}: qid must be an id of the bank" +
                         (f", e.g. {', '.join(close)}" if close else " such as 'lm-001'"))
    return bank[qid]


def select(topic: str | None = None, difficulty: int | None = None, kind: str | None = None) -> list[Question]:
    """The questions of a topic / difficulty / kind (None: any), in id order."""
    if topic is not None and topic not in TOPICS:
        raise ValueError(f"unknown topic {topic!r}; topics: {', '.join(TOPICS)}")
    if difficulty is not None and difficulty not in (1, 2, 3):
        raise ValueError(f"difficulty must be 1, 2 or 3, got {difficulty!r}")
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    return [q for _, q in sorted(load_bank().items())
            if (topic is None or q.topic == topic) and (difficulty is None or q.difficulty == difficulty)
            and (kind is None or q.kind == kind)]


# ------------------------------------------------------------------------------------------------ answering


def _option_index(q: Question, value) -> int:
    if isinstance(value, str) and len(value.strip()) == 1 and value.strip().upper() in LETTERS[:len(q.options)]:
        return LETTERS.index(value.strip().upper())
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(q.options):
        return value
    raise ValueError(f"{q.id}: answer with a letter {LETTERS[0]}-{LETTERS[len(q.options) - 1]} "
                     f"(or an option index 0-{len(q.options) - 1}): value is {value!r}")


def evaluate(q: Question, value: Any, lang: str | None = None) -> Verdict:
    """Is ``value`` right for ``q``? The verdict's message explains: the option's own explanation, the hint of a
    catalogued numeric slip, or a code drill's grader message."""
    _check_question(q)
    lang = _lang(lang)
    if q.kind == "choice":
        option = q.options[_option_index(q, value)]
        return Verdict(option["correct"], option["why"][lang] + ("" if not option["correct"] else
                                                                  " " + q.explanation[lang]))
    if q.kind == "numeric":
        if isinstance(value, bool) or not isinstance(value, numbers.Real) and not hasattr(value, "__float__"):
            raise TypeError(f"{q.id}: answer with a number (in {q.unit['en']}): value is a {type(value).__name__}")
        v = float(value)
        if _within(v, q.answer, q.tolerance):
            return Verdict(True, q.explanation[lang])
        for m in q.mistakes:
            if _within(v, m["value"], max(q.tolerance, 1e-9)):
                return Verdict(False, m["why"][lang])
        hint = ("不在允许误差内（±{:.0%}）。检查单位和每一个因子。" if lang == "zh" else
                "not within ±{:.0%} of the answer: check the unit and every factor.").format(q.tolerance or 1e-9)
        return Verdict(False, hint)
    if not callable(value):
        raise TypeError(f"{q.id}: a code drill is answered with your function ({q.signature}): "
                        f"value is a {type(value).__name__}")
    result = drill_check(q).result(value)  # the check's verdict, without its ✅ line
    if not result.passed:
        return Verdict(False, result.what + (f" … {result.hint}" if result.hint else ""))
    return Verdict(True, q.explanation[lang])


def _check_question(q) -> None:
    if not isinstance(q, Question):
        raise TypeError(f"q must be a Question (question(qid)), got {type(q).__name__}")


def drill_check(q: Question):
    """The course's check function that grades code drill ``q`` (``llmlab.grading.<module>.check_<name>``)."""
    _check_question(q)
    if q.kind != "code":
        raise ValueError(f"{q.id} is a {q.kind} question, not a code drill")
    module, name = q.check.split(".")
    return getattr(importlib.import_module(f"llmlab.grading.{module}"), name)


def answer(qid: str, value: Any, lang: str | None = None) -> bool:
    """Check ``value`` against question ``qid``; print ✅ or ❌ with the explanation or the hint; return True/False."""
    verdict = evaluate(question(qid), value, lang)
    print(f"{'✅' if verdict.correct else '❌'} {qid}: {verdict.message}")
    return verdict.correct


def ask(qid: str, lang: str | None = None) -> None:
    """Print question ``qid`` (options lettered) and where the course teaches it."""
    q = question(qid)
    lang = _lang(lang)
    print(q.text(lang))
    print(("  → 课程：" if lang == "zh" else "  → taught in ") + q.link.replace("#", " §"))



def test_yourself(qids: list[str], lang: str | None = None) -> None:
    """Print the questions ``qids`` (3 to 5, from the bank) that end a notebook, with how to answer them:
    ``answer(id, value)`` checks an answer and explains it. Not graded: it tells you what you understood."""
    qids = checks.strings("qids", qids, "question ids")
    if not qids:
        raise ValueError("qids is empty: name the questions to ask")
    questions = [question(qid) for qid in qids]  # refuses an unknown id
    lang = _lang(lang)
    print("自测（不计分）：用 answer('编号', 选项字母或数字) 作答，它会告诉你对错和原因。" if lang == "zh" else
          "Test yourself (not graded): answer with answer('id', a letter or a number); it says why you are right "
          "or wrong.")
    for q in questions:
        print()
        print(q.text(lang))

# ------------------------------------------------------------------------------------------------ mock interview


class MockInterview:
    """n random questions (choice and numeric) answered in order against a clock; ``report()`` at the end.

    >>> mock = MockInterview(n=3, minutes=5, seed=1)
    >>> mock.current.text()        # the question to answer
    >>> mock.submit("B")           # -> Verdict; moves on to the next question
    """

    def __init__(self, n: int = 5, minutes: float = 10, lang: str | None = None, seed: int | None = None,
                 topics: list[str] | None = None, difficulty: int | None = None):
        n = checks.positive_int("n", n)
        minutes = checks.positive_float("minutes", minutes)
        if seed is not None:
            checks.integer("seed", seed)
        if topics is not None:
            if isinstance(topics, str) or not isinstance(topics, (list, tuple)):
                raise TypeError(f"topics must be a list of topics (or None for all), got {type(topics).__name__}")
            if not topics:
                raise ValueError("topics is empty: name at least one topic, or pass None for all")
            for i, t in enumerate(topics):
                checks.choice(f"topics[{i}]", t, TOPICS)
        pool = [q for q in select(difficulty=difficulty) if q.kind != "code" and (not topics or q.topic in topics)]
        if len(pool) < n:
            raise ValueError(f"only {len(pool)} questions match: n must be at most that many, got {n}")
        self.lang, self.minutes = _lang(lang), float(minutes)
        self.questions = random.Random(seed).sample(pool, n)
        self.verdicts: list[Verdict] = []
        self.start = time.monotonic()

    @property
    def done(self) -> bool:
        return len(self.verdicts) == len(self.questions) or self.remaining <= 0

    @property
    def remaining(self) -> float:
        return self.minutes * 60 - (time.monotonic() - self.start)

    @property
    def current(self) -> Question | None:
        return None if self.done else self.questions[len(self.verdicts)]

    def submit(self, value) -> Verdict:
        if self.done:
            raise RuntimeError("the interview is over: call report()")
        verdict = evaluate(self.current, value, self.lang)
        self.verdicts.append(verdict)
        return verdict

    def report(self) -> str:
        got = sum(v.correct for v in self.verdicts)
        used = min(time.monotonic() - self.start, self.minutes * 60)
        missed = [q.id for q, v in zip(self.questions, self.verdicts) if not v.correct]
        missed += [q.id for q in self.questions[len(self.verdicts):]]
        if self.lang == "zh":
            text = f"得分 {got}/{len(self.questions)}，用时 {used / 60:.1f} 分钟。"
            return text + (f" 建议复习：{', '.join(missed)}" if missed else " 全部正确！")
        text = f"score {got}/{len(self.questions)} in {used / 60:.1f} min."
        return text + (f" Review: {', '.join(missed)}" if missed else " All correct!")


# ------------------------------------------------------------------------------------------------ widgets


def _input_for(q: Question, lang: str):
    """(the options as HTML, the widget whose .value is the answer). Options are written out as text, which
    wraps, and picked with letter buttons: long labels on radio buttons overlap in JupyterLab."""
    import ipywidgets as widgets

    if q.kind == "choice":
        listed = "".join(f"<div style='margin:2px 0'><b>{LETTERS[i]}.</b> {_html(o['text'][lang])}</div>"
                         for i, o in enumerate(q.options))
        return listed, widgets.ToggleButtons(options=[(LETTERS[i], i) for i in range(len(q.options))], value=None,
                                             style={"button_width": "48px"})
    if q.kind == "numeric":
        return "", widgets.FloatText(description=q.unit[lang], style={"description_width": "initial"})
    return "", widgets.HTML(f"<code>{q.signature}</code><br>" + ("在一个单元格里写出这个函数，然后运行 "
                                                                 if lang == "zh" else "Write it in a cell, then run ")
                            + f"<code>answer('{q.id}', your_function)</code>")


def _html(text: str) -> str:
    import html

    return html.escape(text).replace("\n", "<br>")


def quiz(lang: str | None = None, topic: str | None = None, difficulty: int | None = None):
    """A quiz widget: pick the language, topic and difficulty; answer; get the explanation at once."""
    import ipywidgets as widgets

    if topic is not None:
        checks.choice("topic", topic, TOPICS)
    if difficulty is not None:
        checks.integer("difficulty", difficulty, 1, 3)
    lang_w = widgets.ToggleButtons(options=[("中文", "zh"), ("English", "en")], value=_lang(lang),
                                   style={"button_width": "70px"}, layout=widgets.Layout(width="170px"))
    topic_w = widgets.Dropdown(options=[("all topics", None)] + [(t, t) for t in TOPICS], value=topic, description="topic")
    level_w = widgets.Dropdown(options=[("any", None), ("1", 1), ("2", 2), ("3", 3)], value=difficulty,
                               description="difficulty")
    prompt, feedback, score = widgets.HTML(), widgets.HTML(), widgets.Label()
    slot = widgets.Box()
    submit, nxt = widgets.Button(description="Submit / 提交", button_style="primary"), widgets.Button(description="Next / 下一题")
    state = {"pool": [], "i": 0, "right": 0, "asked": 0, "input": None}

    def show():
        if not state["pool"]:
            prompt.value, slot.children, feedback.value = "<i>no question matches</i>", (), ""
            return
        q = state["pool"][state["i"] % len(state["pool"])]
        lg = lang_w.value
        listed, state["input"] = _input_for(q, lg)
        prompt.value = f"<b>[{q.id}] · {q.topic} · {'★' * q.difficulty}</b><br>{_html(q.question[lg])}" \
                       f"<br><small>→ {q.link.replace('#', ' §')}</small>{listed}"
        slot.children = (state["input"],)
        feedback.value = ""
        submit.disabled = q.kind == "code"

    def refilter(_=None):
        state["pool"] = select(topic_w.value, level_w.value)
        random.Random(0).shuffle(state["pool"])
        state["i"] = 0
        show()

    def on_submit(_):
        q = state["pool"][state["i"] % len(state["pool"])]
        value = state["input"].value
        if value is None:
            feedback.value = "<i>pick an option / 请选择一个选项</i>"
            return
        verdict = evaluate(q, value, lang_w.value)
        state["asked"] += 1
        state["right"] += verdict.correct
        color = "green" if verdict.correct else "#b00"
        feedback.value = f"<span style='color:{color}'>{'✅' if verdict.correct else '❌'} {_html(verdict.message)}</span>"
        score.value = f"{state['right']}/{state['asked']}"

    def on_next(_):
        state["i"] += 1
        show()

    for w in (topic_w, level_w):
        w.observe(refilter, names="value")
    lang_w.observe(lambda _: show(), names="value")
    submit.on_click(on_submit)
    nxt.on_click(on_next)
    refilter()
    return widgets.VBox([widgets.HBox([lang_w, topic_w, level_w]), prompt, slot,
                         widgets.HBox([submit, nxt, score]), feedback])


def mock_interview(n: int = 5, minutes: float = 10, lang: str | None = None, seed: int | None = None,
                   topics: list[str] | None = None):
    """A timed mock interview widget: n random questions, a countdown, the score and what to review at the end."""
    import ipywidgets as widgets

    mock = MockInterview(n, minutes, lang, seed, topics)
    clock, prompt, feedback, slot = widgets.Label(), widgets.HTML(), widgets.HTML(), widgets.Box()
    submit = widgets.Button(description="Submit / 提交", button_style="primary")
    state = {"input": None}

    def show():
        q = mock.current
        if q is None:
            prompt.value, slot.children, submit.disabled = f"<b>{_html(mock.report())}</b>", (), True
            return
        listed, state["input"] = _input_for(q, mock.lang)
        prompt.value = f"<b>{len(mock.verdicts) + 1}/{len(mock.questions)} · [{q.id}]</b><br>" \
                       f"{_html(q.question[mock.lang])}{listed}"
        slot.children = (state["input"],)

    def on_submit(_):
        if mock.done or state["input"].value is None:
            show()
            return
        v = mock.submit(state["input"].value)
        feedback.value = f"{'✅' if v.correct else '❌'} {_html(v.message)}"
        show()

    def tick():  # a daemon thread: the countdown stops at the end, and never keeps the kernel alive
        while not mock.done:
            left = max(0, int(mock.remaining))
            clock.value = f"⏱ {left // 60}:{left % 60:02d}"
            time.sleep(1)
        clock.value = "⏱ 0:00" if mock.remaining <= 0 else clock.value
        show()

    submit.on_click(on_submit)
    show()
    threading.Thread(target=tick, daemon=True).start()
    return widgets.VBox([clock, prompt, slot, submit, feedback])


def drill_index() -> list[tuple[str, str, str]]:
    """(id, signature, the grader that checks it) for every code drill: functions to be able to write on a whiteboard."""
    return [(q.id, q.signature, f"llmlab.grading.{q.check}") for q in select(kind="code")]
