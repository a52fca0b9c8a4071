"""Checks for notebook 02_chinese_segmentation."""
from __future__ import annotations

import math
from functools import lru_cache

import torch

from llmlab.data import chinese_gold
from llmlab.grading.core import DTYPE_HINT, Case, Check, Draw, exercise, same
from llmlab.tokenization import chinese as zh
from llmlab.tokenization import crf

SENTENCES = [
    "研究生命起源", "我来到北京清华大学", "他来到了网易杭研大厦", "结婚的和尚未结婚的", "南京市长江大桥",
    "乒乓球拍卖完了", "大语言模型推理要又快又小", "欧阳娜娜在第三季度发布了新歌", "小明硕士毕业于中国科学院计算所",
    "中华人民共和国成立了", "吃葡萄不吐葡萄皮",
]
# hidden texts: dictionary words of 8+ characters; a route tie (AA|A against A|AA) at the end of the text;
# characters missing from some of the HMM's emission tables; characters in none of them (all scores tie)
LONG = ["他在中国科学院自然科学史研究所工作", "这项决定由全国人民代表大会常务委员会通过", "新疆维吾尔自治区的葡萄很甜"]
TIES = ["走走走", "你快过来看看看", "你去试试试", "我们慢慢慢"]
PARTLY_UNKNOWN = ["她们这里很热闹", "武曌是中国唯一的女皇帝", "王喆和张彧都是新来的同事", "她说这个很好吃"]
UNKNOWN = ["南汉的开国皇帝叫刘䶮", "𠮷野家的牛肉饭很好吃", "龘字由三个龙字组成"]


@lru_cache(maxsize=1)
def _dictionary() -> zh.Dictionary:
    return zh.load_dictionary()


@lru_cache(maxsize=1)
def _hmm() -> zh.HMM:
    return zh.HMM.from_jieba()


@lru_cache(maxsize=1)
def _gold() -> tuple[tuple[str, ...], ...]:
    return tuple(map(tuple, chinese_gold()[3:]))  # the notebook prints the first three


def _texts(d: Draw, k: int) -> list[str]:
    return ["".join(words) for words in d.sample(_gold(), k)]


def _words(c: Check, out, text: str, what: str, hint: str = "a character that starts no word is a word by itself"):
    c.expect(isinstance(out, list) and all(isinstance(w, str) for w in out),
             f"{what} returned {type(out).__name__}, expected a list of str", "collect the words in a list")
    c.expect("".join(out) == text, f"{what} gave {out}, which does not spell {text!r}",
             "every character must land in exactly one word: " + hint)
    return out


def _shortest_first(text: str, d: zh.Dictionary, max_len: int, backward: bool) -> list[str]:
    words, i, j = [], 0, len(text)
    while (i < len(text)) if not backward else (j > 0):
        if not backward:
            k = next((k for k in range(i + 2, min(len(text), i + max_len) + 1) if text[i:k] in d), i + 1)
            words.append(text[i:k])
            i = k
        else:
            k = next((k for k in range(j - 2, max(0, j - max_len) - 1, -1) if text[k:j] in d), j - 1)
            words.append(text[k:j])
            j = k
    return words[::-1] if backward else words


def _max_match_cases(d: Draw) -> list[Case]:
    dic = _dictionary()
    return [Case("a dictionary word of 8 or more characters", d.choice(LONG), dic, dic.max_len,
                 hint="a word may have up to max_len characters (the argument): do not cap it at the longest word shown"),
            Case("another max_len", _texts(d, 1)[0], dic, d.int(2, 6)),
            *(Case("another sentence", t, dic, dic.max_len) for t in _texts(d, 2))]


def _check_max_match(c: Check, backward: bool) -> None:
    d = _dictionary()
    mine = zh.backward_max_match if backward else zh.forward_max_match
    other = zh.forward_max_match if backward else zh.backward_max_match
    outs = [c.call(text, d, d.max_len) for text in SENTENCES]
    wants = [mine(text, d) for text in SENTENCES]
    text, out, want = next(((t, o, w) for t, o, w in zip(SENTENCES, outs, wants) if o != w), (None, None, None))
    # a mistake is named only when it explains the answers on every sentence
    c.diagnose(outs, {
        "you collected the words right to left: reverse the list at the end": [w[::-1] for w in wants],
        "take the longest word first: try lengths from max_len down to 1":
            [_shortest_first(t, d, d.max_len, backward) for t in SENTENCES],
        "that is the other direction: " + ("start from the end of the text" if backward else "start from the beginning"):
            [other(t, d) for t in SENTENCES],
    }, f"on {text!r} you gave {out}, expected {want}", correct=wants)
    for text, out, want in zip(SENTENCES, outs, wants):
        _words(c, out, text, f"on {text!r} your function")
        c.expect(out == want, f"on {text!r} you gave {out}, expected {want}",
                 "at each position take the longest dictionary word of at most max_len characters")
    for text, max_len in [("中华人民共和国成立了", 7), ("中华人民共和国成立了", 2), ("研究生命起源", 1)]:
        out = _words(c, c.call(text, d, max_len), text, f"with max_len={max_len} your function")
        want = mine(text, d, max_len)
        c.expect(out == want, f"with max_len={max_len}, {text!r} gave {out}, expected {want}",
                 "a word may be exactly max_len characters long: look at text[i:i + max_len] (or text[j - max_len:j])"
                 if any(len(w) == max_len for w in want) else "never take a word longer than max_len")
    out = _words(c, c.call("🙂ABC中文🙂", d, d.max_len), "🙂ABC中文🙂", "on '🙂ABC中文🙂' your function")
    c.expect(out == mine("🙂ABC中文🙂", d), f"on '🙂ABC中文🙂' you gave {out}, expected {mine('🙂ABC中文🙂', d)}",
             "characters outside the dictionary are words by themselves")
    c.expect(c.call("", d, d.max_len) == [], "the empty string should give []", "")


@exercise("02.forward_max_match", reference=zh.forward_max_match, cases=_max_match_cases)
def check_forward_max_match(c: Check) -> None:
    _check_max_match(c, backward=False)


@exercise("02.backward_max_match", reference=zh.backward_max_match, cases=_max_match_cases)
def check_backward_max_match(c: Check) -> None:
    _check_max_match(c, backward=True)


def _choose(fmm: list[str], bmm: list[str]) -> list[str]:
    """The reference rule, on given FMM and BMM results."""
    if fmm == bmm:
        return bmm
    if len(fmm) != len(bmm):
        return fmm if len(fmm) < len(bmm) else bmm
    return fmm if sum(len(w) == 1 for w in fmm) < sum(len(w) == 1 for w in bmm) else bmm


@lru_cache(maxsize=1)
def _gold_pairs() -> dict[str, list[tuple[list[str], list[str]]]]:
    """FMM and BMM of the gold sentences, by the rule that chooses between them."""
    pairs: dict[str, list] = {}
    for f, b in ((zh.forward_max_match(t, _dictionary()), zh.backward_max_match(t, _dictionary()))
                 for t in map("".join, _gold())):
        singles = [sum(len(w) == 1 for w in ws) for ws in (f, b)]
        pairs.setdefault("FMM and BMM agree" if f == b else "another word count" if len(f) != len(b) else
                         "a full tie" if singles[0] == singles[1] else "as many words", []).append((f, b))
    return pairs


def _choose_cases(d: Draw) -> list[Case]:
    pair = [["中华人民共和国", "成", "立"], ["中华", "人民", "共和国", "成立"]]
    return [Case("fewer words but more single characters", *(pair if d.choice([True, False]) else pair[::-1]),
                 hint="apply the rules in order: the word count decides first, single characters only break its tie"),
            *(Case(kind, *d.choice(pairs)) for kind, pairs in sorted(_gold_pairs().items()))]


@exercise("02.choose_segmentation", reference=_choose, cases=_choose_cases)
def check_choose_segmentation(c: Check) -> None:
    fewer, singles = "when the word counts differ, the result with fewer words wins", \
        "with equal word counts, compare the number of single-character words"
    tie = "when words and single characters tie, prefer BMM (right more often on Chinese)"
    for fmm, bmm, hint in [
        (["研究生", "命", "起源"], ["研究", "生命", "起源"], singles),
        (["结婚", "的", "和尚", "未", "结婚", "的"], ["结婚", "的", "和", "尚未", "结婚", "的"], tie),
        (["中华人民共和国", "成立"], ["中华", "人民共和国", "成立"], fewer),
        (["南京", "市长", "江", "大桥"], ["南京市", "长江大桥"], fewer),
        (["我", "爱", "你"], ["我", "爱", "你"], "when both agree, return either"),
        (["ab", "c", "de"], ["a", "bc", "de"], tie),
        (["北京大学", "生活"], ["北", "京大学生活"], singles),
    ]:
        out, want = c.call(fmm, bmm), _choose(fmm, bmm)
        c.expect(out == want, f"FMM {fmm} vs BMM {bmm}: you chose {out}, expected {want}", hint)


def _has(obj, i) -> bool:
    try:
        obj[i]
        return True
    except (KeyError, IndexError, TypeError):
        return False


def _as_dag(out, n: int) -> dict[int, list[int]] | None:
    """A learner's DAG as {i: sorted ends}, or None when some position lacks a (non-empty) entry."""
    if not hasattr(out, "__getitem__") or any(not _has(out, i) or not out[i] for i in range(n)):
        return None
    return {i: sorted(out[i]) for i in range(n)}


def _dag_cases(d: Draw) -> list[Case]:
    dic = _dictionary()
    return [Case("a dictionary word of 8 or more characters", d.choice(LONG), dic,
                 hint="words can be longer than the ones shown: extend while the fragment is in dictionary.freq, "
                      "not up to a fixed length"),
            *(Case("another sentence", t, dic) for t in _texts(d, 2))]


def _dag_compare(out, want) -> str | None:
    got = _as_dag(out, len(want))
    return "some position has no entry (or an empty list)" if got is None else \
        None if got == want else "some position lists other ends"


@exercise("02.build_dag", reference=zh.build_dag, cases=_dag_cases, compare=_dag_compare)
def check_build_dag(c: Check) -> None:
    d = _dictionary()
    for text in SENTENCES + ["去北京大学玩", "🙂ABC"]:
        got, want = _as_dag(c.call(text, d), len(text)), zh.build_dag(text, d)
        if got is None:
            c.fail(f"for {text!r} some position has no entry (or an empty list)",
                   "give every position i a list; when no word starts at i, DAG[i] = [i]: the character alone")
        if got != want:
            if got == {i: [j + 1 for j in js] for i, js in want.items()}:
                c.fail(f"for {text!r} your end positions are one too large",
                       "DAG[i] holds inclusive ends j: the word is sentence[i:j + 1]")
            if any(set(got[i]) > set(want[i]) for i in want):
                c.fail(f"for {text!r} your DAG has ends that are not words",
                       "a prefix with frequency 0 is not a word: record j only when freq > 0")
            if any(set(got[i]) < set(want[i]) for i in want):
                c.fail(f"for {text!r} your DAG misses some longer words (e.g. DAG[1] of '去北京大学玩' should be [1, 2, 4])",
                       "keep extending while the fragment is in dictionary.freq (a prefix of some word), even when it is not a word itself")
        c.expect(got == want, f"for {text!r} you gave {got}, expected {want}", "DAG[i] lists every j with sentence[i:j+1] a word")


def _route_gap(out, want, n: int) -> int | None:
    """The first position where a learner's route differs from the reference's: None if none, -1 when an
    entry is missing, -2 when one is not a (score, j) pair."""
    if not hasattr(out, "__getitem__") or not all(_has(out, i) for i in range(n + 1)):
        return -1
    try:
        return next((i for i in range(n + 1) if abs(out[i][0] - want[i][0]) > 1e-6 or (i < n and out[i][1] != want[i][1])), None)
    except (TypeError, IndexError, KeyError):
        return -2


def _route_cases(d: Draw) -> list[Case]:
    dic = _dictionary()
    tie, text = d.choice(TIES), _texts(d, 1)[0]
    dag = zh.build_dag(text, dic)
    best = zh.best_route(text, dag, dic)
    thin = {i: [j for j in js if j != best[i][1]] or js for i, js in dag.items()}  # without the best word's end
    return [Case("two routes with equal scores", tie, zh.build_dag(tie, dic), dic,
                 hint="on equal scores keep the larger j: take the max of (score, j) tuples"),
            Case("a DAG that leaves out some words", text, thin, dic,
                 hint="use the dag you are given: route[i] only looks at the ends j in dag[i]"),
            *(Case("another sentence", t, zh.build_dag(t, dic), dic) for t in _texts(d, 2))]


def _route_compare(out, want) -> str | None:
    gap = _route_gap(out, want, len(want) - 1)
    return None if gap is None else {-1: "your route lacks an entry for some position 0..N",
                                     -2: "some entry is not a (score, j) pair"}.get(gap, f"route[{gap}] differs")


@exercise("02.best_route", reference=zh.best_route, cases=_route_cases, compare=_route_compare)
def check_best_route(c: Check) -> None:
    d = _dictionary()
    hints = {"math domain error": "a fragment missing from the dictionary counts as frequency 1: use (freq or 1)"}
    for text in SENTENCES + ["🙂ABC北京"]:
        dag = zh.build_dag(text, d)
        out, want = c.call(text, dag, d, error_hints=hints), zh.best_route(text, dag, d)
        gap = _route_gap(out, want, len(text))
        c.expect(gap != -1, f"for {text!r} your route should have an entry for every position 0..{len(text)}",
                 "route[N] = (0.0, 0) ends the recursion")
        c.expect(gap != -2, f"for {text!r} some route entry is not a (score, j) pair", "store route[i] = (best score, j)")
        if gap is None:
            continue
        words = zh.route_words(text, out) if all(i < out[i][1] + 1 for i in range(len(text))) else None
        unnormalised = zh.best_route(text, dag, zh.Dictionary(d.freq, 1, d.max_len))
        if words == zh.route_words(text, unnormalised) != zh.route_words(text, want) and abs(out[0][0] - unnormalised[0][0]) < 1e-6:
            c.fail(f"for {text!r} your route gives {words}", "use log-probabilities: log(freq) - log(total), not log(freq)")
        if abs(out[0][0] - want[0][0]) > 1e-6 and words == zh.route_words(text, want):
            c.fail(f"for {text!r} route[0] scores {out[0][0]:.4f}, expected {want[0][0]:.4f}",
                   "route[i] = max over j of log p(sentence[i:j+1]) + route[j+1][0]")
        greedy = [max((math.log(d.freq.get(text[i:j + 1]) or 1), j) for j in dag[i]) for i in range(len(text))]
        c.fail(f"for {text!r} your route gives {words}, expected {zh.route_words(text, want)}",
               "fill route from the right end (i = N-1 down to 0): each choice needs the best score of what follows"
               if words == zh.route_words(text, greedy) else "route[i] = max over j in dag[i] of (log p(sentence[i:j+1]) + "
               "route[j+1][0], j)")


def _viterbi_cases(d: Draw) -> list[Case]:
    hmm, runs = _hmm(), [r for t in _texts(d, len(_gold())) for r in zh.RE_HAN.findall(t) if len(r) > 1]
    return [Case("characters missing from some emission tables", d.choice(PARTLY_UNKNOWN), hmm,
                 hint="a character missing from hmm.emit[y] has emission zh.MIN_LOG (log 0), not 0"),
            Case("a character in no emission table (scores tie)", d.choice(UNKNOWN), hmm,
                 hint="MIN_LOG absorbs everything added to it, so scores tie: break ties by (score, state) tuples, "
                      "the later letter wins, for the previous state and for the last one"),
            Case("made-up tables where two previous states tie", "甲乙", _tie_hmm(),
                 hint="on equal scores the later letter wins for the previous state too: take the max of "
                      "(score, state) tuples over zh.PREVIOUS[y]"),
            *(Case("another sentence", r, hmm) for r in runs[:3])]


def _tie_hmm() -> zh.HMM:
    """All starts and transitions 0, both characters emitted with 0 except S('乙') = -1: for '甲乙' the last
    state is E, reached from B or M with equal scores (the later letter, M, wins)."""
    trans = {y0: {y: 0.0 for y in "BMES" if y0 in zh.PREVIOUS[y]} for y0 in "BMES"}
    emit = {y: {"甲": 0.0, "乙": -1.0 if y == "S" else 0.0} for y in "BMES"}
    return zh.HMM({y: 0.0 for y in "BMES"}, trans, emit)


@exercise("02.viterbi", reference=zh.viterbi, cases=_viterbi_cases,
          compare=lambda out, want: None if isinstance(out, (str, list, tuple)) and list(out) == want else "your tags differ")
def check_viterbi(c: Check) -> None:
    hmm = _hmm()
    for text in ["欧阳娜娜", "杭研大厦", "我", "他来到了网易杭研大厦", "生活就像一盒巧克力", "小明硕士毕业于中国科学院计算所"]:
        out = c.call(text, hmm)
        c.expect(len(out) == len(text) and all(t in "BMES" for t in out),
                 f"for {text!r} you returned {out!r}, expected one tag of 'BMES' per character",
                 "return a list with one of 'B', 'M', 'E', 'S' for each character")
        out, want = list(out), zh.viterbi(text, hmm)
        if out[-1] in "BM":
            c.fail(f"for {text!r} your tags {''.join(out)} end inside a word",
                   "the last character must end a word: choose the best final state among E and S only")
        c.diagnose(out, {"each tag depends on the previous one: keep, for every state, the best score and the path that "
                         "reached it": [max("BMES", key=lambda y: hmm.emit[y].get(ch, zh.MIN_LOG)) for ch in text]},
                   f"for {text!r} you tagged each character on its own: {''.join(out)}", correct=want)
        c.expect(out == want, f"for {text!r} you gave {''.join(out)}, expected {''.join(want)}",
                 "V_t(y) = max over allowed y' of V_{t-1}(y') + trans[y'][y] + emit[y][c_t]; start with start[y] + emit[y][c_0]")


def _tags_cases(d: Draw) -> list[Case]:
    def tags(n: int, first: str) -> list[str]:
        out = [first]
        while len(out) < n:
            out.append(d.choice([y for y in "BMES" if out[-1] in zh.PREVIOUS[y]]))
        return out

    texts = [r for t in _texts(d, len(_gold())) for r in zh.RE_HAN.findall(t) if len(r) > 3]
    return [Case("tags as a list, as viterbi returns them", texts[0], tags(len(texts[0]), d.choice("BS")),
                 hint="tags may be a list: look at tags[i], do not call str methods on them"),
            Case("a fragment that starts inside a word (first tag M or E)", texts[1],
                 "".join(tags(len(texts[1]), "M")),
                 hint="the first word starts at position 0, even when the first tag is M or E"),
            Case("another sentence", texts[2], "".join(tags(len(texts[2]), d.choice("BS"))))]


@exercise("02.tags_to_words", reference=zh.tags_to_words, cases=_tags_cases)
def check_tags_to_words(c: Check) -> None:
    for chars, tags in [("欧阳娜娜", "BEBE"), ("我爱北京", "SSBE"), ("杭研大厦", "BMME"), ("一二三", "SBE"), ("一二三", "SSB"),
                        ("一二三四", "SBMM"), ("好", "S")]:
        out = _words(c, c.call(chars, tags), chars, f"tags_to_words({chars!r}, {tags!r})",
                     "keep a word still open at the end (last tag B or M)")
        c.expect(out == zh.tags_to_words(chars, tags), f"tags_to_words({chars!r}, {tags!r}) gave {out}, expected "
                 f"{zh.tags_to_words(chars, tags)}", "a word still open at the end (last tag B or M) must be kept"
                 if tags[-1] in "BM" else "a word ends after every E and every S")


def _spans_cases(d: Draw) -> list[Case]:
    return [Case("a word that also occurs inside the word before it", ["谢谢", "谢谢", "你"],
                 hint="each word starts where the previous one ended: keep a running offset"),
            *(Case("another sentence", list(words)) for words in d.sample(_gold(), 2)), Case("one word", ["火锅"])]


def _spans_compare(out, want) -> str | None:
    if not isinstance(out, (set, frozenset, list, tuple)):
        return f"you returned {type(out).__name__}, expected a set of (start, end) pairs"
    return None if set(map(tuple, out)) == want else "your spans differ"


@exercise("02.word_spans", reference=zh.word_spans, cases=_spans_cases, compare=_spans_compare)
def check_word_spans(c: Check) -> None:
    for words in [["我们", "喜欢", "火锅"], ["的", "的", "的"], ["研究生", "命", "起源"], []]:
        out = c.call(words)
        c.expect(isinstance(out, (set, frozenset, list, tuple)), f"you returned {type(out).__name__}", "return a set of (start, end) pairs")
        got, want = set(map(tuple, out)), zh.word_spans(words)
        shown = f"{words} gave {sorted(got)}, expected {sorted(want)}"
        if got == {(s, e - 1) for s, e in want} != want:
            c.fail(shown, "end is exclusive: a word of length L at s spans (s, s + L)")
        if got != want and (len(got) < len(want) or any(s == 0 for s, _ in got if (s, _) not in want)):
            c.fail(shown, "each word starts where the previous one ended: keep a running offset")
        c.expect(got == want, shown, "")


def _spf(gold, pred) -> tuple[float, float, float]:
    s = zh.evaluate(gold, pred)
    return s.precision, s.recall, s.f1


def _prf_cases(d: Draw) -> list[Case]:
    dic, gold = _dictionary(), [list(words) for words in d.sample(_gold(), d.int(3, 6))]
    pred = [d.choice([zh.forward_max_match, zh.backward_max_match])("".join(g), dic) for g in gold]
    return [Case("words repeated within a sentence", [["他", "看", "了", "看", "书"], ["谢谢", "谢谢", "你"]],
                 [["他", "看", "了", "看书"], ["谢谢", "谢", "谢", "你"]],
                 hint="count every word, repeated ones too: |pred| and |gold| are numbers of spans, not of distinct words"),
            Case("more sentences", gold, pred)]


@exercise("02.span_prf", reference=_spf, cases=_prf_cases)
def check_span_prf(c: Check) -> None:
    # sizes differ (8 gold, 10 predicted words), and 的/的的 recur at other positions, so that
    # swapping P and R, matching word strings, and averaging per sentence all give other numbers
    gold = [["我们", "喜欢", "火锅"], ["的", "的的"], ["研究", "生命", "起源"]]
    pred = [["我们", "喜", "欢", "火锅"], ["的的", "的"], ["研究生", "命", "起", "源"]]
    out = c.call(gold, pred)
    c.expect(isinstance(out, tuple) and len(out) == 3, f"you returned {out!r}, expected (precision, recall, f1)", "")
    want = _spf(gold, pred)
    shown = f"you returned {tuple(round(c.number(x, 'each score'), 3) for x in out)}, expected {tuple(round(x, 3) for x in want)}"
    close = lambda a, b: abs(a - b) < 1e-9  # noqa: E731
    if not all(map(close, out, want)):
        hit, n_gold, n_pred = sum(len(set(g) & set(p)) for g, p in zip(gold, pred)), sum(map(len, gold)), sum(map(len, pred))
        if close(out[0], want[1]) and close(out[1], want[0]):
            c.fail(shown, "precision divides by the predicted words, recall by the gold words")
        if close(out[0], hit / n_pred) or close(out[1], hit / n_gold):
            c.fail(shown, "compare word spans, not word strings: the same word at another position is not a match")
        if close(out[0], sum(_spf([g], [p])[0] for g, p in zip(gold, pred)) / len(gold)):
            c.fail(shown, "micro-average: add up matches and counts over all sentences, then divide once")
    c.expect(all(map(close, out, want)), shown, "P = |gold ∩ pred| / |pred|, R = |gold ∩ pred| / |gold|, F1 = 2PR / (P + R)")
    perfect = c.call([["一", "二"]], [["一", "二"]])
    c.expect(tuple(perfect) == (1.0, 1.0, 1.0), f"identical segmentations gave {perfect}", "")
    zero = c.call([["一二"]], [["一", "二"]])
    c.expect(tuple(zero) == (0.0, 0.0, 0.0), f"no common span gave {zero}, expected (0.0, 0.0, 0.0)",
             "F1 is 0 when P + R is 0 (avoid dividing by zero)")


# HMM training: the notebook's example has two sentences, single-character words and a word of three characters
TRAIN = [["我们", "喜欢", "吃", "火锅"], ["我", "爱", "北京天安门"]]


def counted_tables(gold, alpha: float, across: bool = False, start_all: bool = False, k_states: int = 2,
            own_vocab: bool = False):
    """``zh.train_hmm`` with one of the catalogued mistakes: transitions across sentences, start counted over
    every tag, smoothing over all k_states=4 tags, emissions smoothed over the tag's own characters only."""
    tags = ["".join("S" if len(w) == 1 else "B" + "M" * (len(w) - 2) + "E" for w in words) for words in gold]
    chars = ["".join(words) for words in gold]
    first = {y: 0 for y in "BMES"}
    for t in tags:
        for y in (t if start_all else t[0]):
            first[y] += 1
    pairs = {y0: {y: 0 for y in "BMES"} for y0 in "BMES"}
    for t in (["".join(tags)] if across else tags):
        for y0, y in zip(t, t[1:]):
            pairs[y0][y] += 1
    n_first = sum(first[y] for y in "BS")
    start = {y: math.log((first[y] + alpha) / (n_first + 2 * alpha)) if y in "BS" else zh.MIN_LOG for y in "BMES"}
    trans = {}
    for y0 in "BMES":
        allowed = [y for y in "BMES" if y0 in zh.PREVIOUS[y]]
        total = sum(pairs[y0][y] for y in allowed) + k_states * alpha
        trans[y0] = {y: math.log((pairs[y0][y] + alpha) / total) for y in allowed}
    seen = {y: {} for y in "BMES"}
    for cs, t in zip(chars, tags):
        for ch, y in zip(cs, t):
            seen[y][ch] = seen[y].get(ch, 0) + 1
    vocab = sorted(set("".join(chars)))
    emit = {}
    for y in "BMES":
        keys = sorted(seen[y]) if own_vocab else vocab
        total = sum(seen[y].values()) + alpha * len(keys)
        emit[y] = {ch: math.log((seen[y].get(ch, 0) + alpha) / total) for ch in keys}
    return start, trans, emit


def _train_cases(d: Draw) -> list[Case]:
    gold = [list(words) for words in d.sample(_gold(), d.int(4, 8))]
    singles = [[w for w in words if len(w) == 1] or ["好"] for words in d.sample(_gold(), 3)]
    once = [["我们", "喜欢", "火锅"], ["他", "喜欢", "龘"]]  # 龘 seen once, as a single-character word
    return [Case("more sentences, another alpha", gold, round(d.float(0.05, 3.0), 3),
                 hint="alpha is the argument: add it to every count, and alpha times the number of outcomes below"),
            Case("sentences of single-character words only (no B, M or E seen)", singles, round(d.float(0.1, 2.0), 3),
                 hint="a tag never seen still gets a full row: alpha / (0 + 2 alpha) for transitions, 1 / |V| for emissions"),
            Case("a character seen only once", once, 0.5,
                 hint="every tag's emissions cover every character seen in training, under any tag"),
            Case("one sentence", [list(d.choice(_gold()))], 1.0)]


TUPLE_HINT = "return the three tables as a tuple of dicts, (start, trans, emit), as the docstring says"


def _train_compare(out, want) -> str | None:
    if not (isinstance(out, tuple) and len(out) == 3):
        return f"you returned {type(out).__name__}, expected a tuple (start, trans, emit)"
    return same(out, want, reveal=False)


@exercise("02.train_hmm", reference=zh.train_hmm, cases=_train_cases, compare=_train_compare)
def check_train_hmm(c: Check) -> None:
    out = c.call(TRAIN, 1.0)
    c.expect(isinstance(out, tuple) and len(out) == 3 and all(isinstance(t, dict) for t in out),
             f"you returned {type(out).__name__}, expected a tuple (start, trans, emit) of dicts", TUPLE_HINT)
    start, trans, emit = out
    want_start, want_trans, want_emit = zh.train_hmm(TRAIN, 1.0)
    c.expect(set(start) == set("BMES") and start.get("M") == zh.MIN_LOG == start.get("E"),
             f"start is {start!r:.120}", "start needs all four tags; no sentence starts with M or E: give them "
             "exactly zh.MIN_LOG, and smooth over B and S only")
    if same(start, want_start) is not None:
        c.diagnose(start, {"start counts only the first tag of each sentence":
                           counted_tables(TRAIN, 1.0, start_all=True)[0]}, f"start is {start!r:.120}", correct=want_start)
        c.fail(f"start is {start!r:.120}, expected {want_start!r:.120}",
               "start[y] = log((sentences starting with y + alpha) / (sentences + 2 alpha)) for y in B and S")
    for y0 in "BMES":
        c.expect(isinstance(trans.get(y0), dict) and set(trans[y0]) == set(want_trans[y0]),
                 f"trans[{y0!r}] has the keys {sorted(trans.get(y0) or [])}, expected {sorted(want_trans[y0])}",
                 "keep only the transitions zh.PREVIOUS allows; impossible ones (B->B, E->M ...) are absent, as in jieba")
    if same(trans, want_trans) is not None:
        c.diagnose(trans, {
            "do not count a transition from the last tag of one sentence to the first tag of the next":
                counted_tables(TRAIN, 1.0, across=True)[1],
            "smooth over the two tags allowed after y0 only: the denominator adds 2 alpha, not 4 alpha":
                counted_tables(TRAIN, 1.0, k_states=4)[1]}, f"trans is {trans!r:.160}", correct=want_trans)
        c.fail(f"trans is {trans!r:.160}, expected {want_trans!r:.160}",
               "trans[y0][y] = log((n(y0 -> y) + alpha) / (n(y0 -> any) + 2 alpha)), each row normalised on its own")
    for y in "BMES":
        c.expect(isinstance(emit.get(y), dict) and set(emit[y]) == set(want_emit[y]),
                 f"emit[{y!r}] has {len(emit.get(y) or {})} characters, expected {len(want_emit[y])}",
                 "every tag's emissions cover every character seen in training, under any tag (the vocabulary V)")
    c.expect(same(emit, want_emit) is None, f"emit differs: {same(emit, want_emit)}",
             "emit[y][c] = log((n(y, c) + alpha) / (n(y) + alpha |V|)), with n(y) the characters tagged y")


# ------------------------------------------------------------------------------------------ the linear-chain CRF
# emissions (B, T, K), transitions (K, K) from row i to column j, start (K,), end (K,), as torchcrf's batch_first


def _crf_inputs(B: int, T: int, K: int, seed: int, scale: float = 1.0, dtype: torch.dtype = torch.float32):
    """(emissions, transitions, start, end) from a private generator, transitions not symmetric."""
    g = torch.Generator().manual_seed(seed)
    e, tr, s, en = (torch.randn(*shape, generator=g, dtype=torch.float64) * k
                    for shape, k in (((B, T, K), 2.0 * scale), ((K, K), 1.5), ((K,), 2.0), ((K,), 2.0)))
    return tuple(x.to(dtype) for x in (e, tr, s, en))


def _crf_cases(d: Draw, tags: bool = False) -> list[Case]:
    """Hidden inputs for the CRF's exercises: other lengths, T = 1, another K, huge and very negative scores,
    float64, one long sentence; with ``tags``, a random gold path for each sentence after the emissions."""
    def make(kind: str, B: int, T: int, K: int, scale: float = 1.0, shift: float = 0.0,
             dtype: torch.dtype = torch.float32, hint: str = "") -> Case:
        e, tr, s, en = _crf_inputs(B, T, K, d.int(0, 10**6), scale, dtype)
        e = e + shift
        args = (e, d.randint(0, K, (B, T)), tr, s, en) if tags else (e, tr, s, en)
        return Case(kind, *args, hint=hint)

    overflow = ("exp of scores in the thousands overflows (and of very negative ones underflows to 0, whose log is "
                "-inf): use torch.logsumexp, which subtracts the maximum before exp")
    return [make("another length and batch", d.int(2, 5), d.int(2, 9), 4),
            make("one position (T = 1)", d.int(2, 4), 1, 4,
                 hint="with T = 1 there is no transition: the score is start + emissions[:, 0] + end"),
            make("another number of tags K", d.int(2, 4), d.int(3, 8), d.choice([2, 3, 5, 7]),
                 hint="K is emissions.shape[-1]: do not assume the four tags B, M, E, S"),
            make("scores in the thousands", d.int(2, 3), d.int(3, 7), 4, scale=300.0, shift=2000.0, hint=overflow),
            make("very negative scores", d.int(2, 3), d.int(3, 7), 4, scale=50.0, shift=-1500.0, hint=overflow),
            make("float64 scores", d.int(2, 4), d.int(2, 7), 4, dtype=torch.float64),
            make("one long sentence", 1, d.int(20, 40), 4)]


def _partition_mistakes(e, tr, s, en) -> dict[str, torch.Tensor]:
    """What the usual slips in the forward algorithm compute, on the same inputs."""
    def forward(reduce, tr=tr, s=s, en=en, dim=1):
        alpha = s + e[:, 0]
        for t in range(1, e.shape[1]):
            alpha = reduce(alpha[:, :, None] + tr, dim) + e[:, t]
        return reduce(alpha + en, 1)

    lse = torch.logsumexp
    top = lambda x, dim: x.max(dim).values  # noqa: E731
    zero = torch.zeros_like(s)
    return {
        "log Z sums over all paths: logsumexp, not max (max gives the best path's score, Viterbi's)": forward(top),
        "add start[y] to the first position's scores: alpha_0 = start + emissions[:, 0]": forward(lse, s=zero),
        "add end[y] before the final logsumexp: log Z = logsumexp(alpha_{T-1} + end)": forward(lse, en=zero),
        "transitions[i, j] is the score of going from i to j: reduce over the previous tag i, rows "
        "(alpha[:, :, None] + transitions, then logsumexp over dim 1)": forward(lse, tr=tr.T),
        "reduce over the previous tag i (dim 1 of alpha[:, :, None] + transitions), not over the next tag j":
            forward(lse, dim=2),
    }


@exercise("02.crf_log_partition", reference=crf.crf_log_partition, cases=_crf_cases)
def check_crf_log_partition(c: Check) -> None:
    e, tr, s, en = _crf_inputs(3, 6, 4, seed=11)
    out = c.call(e, tr, s, en)
    c.expect_tensor(out, shape=(3,), dtype=e.dtype, name="crf_log_partition(emissions (3, 6, 4), ...)")
    want = crf.crf_log_partition(e, tr, s, en)
    c.diagnose(out, _partition_mistakes(e, tr, s, en), "your log Z matches a known mistake", rtol=1e-5,
               correct=want)
    c.close(out, want, "log Z differs from the forward algorithm's",
            "alpha_0 = start + emissions[:, 0]; alpha_t = logsumexp over the previous tag of (alpha_{t-1}[:, :, None] "
            "+ transitions), plus emissions[:, t]; log Z = logsumexp(alpha_{T-1} + end)")
    # on a tiny input, every path can be listed: log Z is the logsumexp of their scores
    e2, tr2, s2, en2 = _crf_inputs(1, 3, 4, seed=12)
    paths = torch.cartesian_prod(*[torch.arange(4)] * 3)  # (64, 3): every path of 3 tags among 4
    scores = crf.crf_score(e2.expand(64, 3, 4), paths, tr2, s2, en2)
    c.close(c.call(e2, tr2, s2, en2), torch.logsumexp(scores, 0)[None],
            "on emissions (1, 3, 4), log Z is not the logsumexp of the scores of the 64 paths",
            "every path counts once: its score is start + emissions along it + transitions between its tags + end")


def _viterbi_mistakes(e, tr, s, en) -> dict[str, torch.Tensor]:
    best = lambda **kw: crf.crf_viterbi(*(kw.get(k, v) for k, v in (("e", e), ("tr", tr), ("s", s), ("en", en))))  # noqa: E731
    zero = torch.zeros_like(s)
    right = best()
    back = []  # the right back-pointers, to read them back shifted by one position
    delta = s + e[:, 0]
    for t in range(1, e.shape[1]):
        delta, idx = (delta[:, :, None] + tr).max(dim=1)
        delta = delta + e[:, t]
        back.append(idx)
    shifted = [right[:, -1]]
    for t in range(e.shape[1] - 2, -1, -1):  # tag t from the pointers stored for position t instead of t + 1
        shifted.append(back[max(t - 1, 0)].gather(1, shifted[-1][:, None]).squeeze(1))
    return {
        "each tag depends on its neighbours: keep, for every tag, the best score of a path ending in it, and where "
        "it came from (not the argmax of each position's emissions)": e.argmax(-1),
        "add start[y] to the first position's scores: delta_0 = start + emissions[:, 0]": best(s=zero),
        "add end[y] before choosing the last tag: argmax of delta_{T-1} + end": best(en=zero),
        "transitions[i, j] is the score of going from i to j: maximise over the previous tag i, rows "
        "(delta[:, :, None] + transitions, then max over dim 1)": best(tr=tr.T),
        "the path comes out backwards: you read it from the last tag, reverse it": right.flip(-1),
        "off by one in the backtrack: the pointer stored at position t + 1 gives the tag at t": torch.stack(
            shifted[::-1], dim=1),
    }


def _crf_viterbi_compare(out, want) -> str | None:
    return same(out, want, name="your tags", reveal=False)  # tags are ints: equal or not, after type, shape, dtype


def _crf_viterbi_cases(d: Draw) -> list[Case]:
    B, T = d.int(2, 4), d.int(3, 8)
    ties = d.randint(0, 3, (B, T, 4)).float()  # integer scores and no transition: many paths tie
    zero = torch.zeros(4)
    return [*_crf_cases(d), Case("scores that tie", ties, torch.zeros(4, 4), zero, zero.clone(),
                                 hint="on equal scores keep the lowest tag index, for the previous tag and for the "
                                      "last one: torch.max(dim) and argmax do, a loop needs a strict >")]


@exercise("02.crf_viterbi", reference=crf.crf_viterbi, cases=_crf_viterbi_cases, compare=_crf_viterbi_compare)
def check_crf_viterbi(c: Check) -> None:
    e, tr, s, en = _crf_inputs(3, 7, 4, seed=22)  # a seed on which every mistake below changes a path
    out = c.call(e, tr, s, en)
    c.expect(isinstance(out, torch.Tensor), f"you returned {type(out).__name__}, expected a tensor of tags",
             "return the paths as one (B, T) tensor: torch.stack the tags of each position along dim 1")
    c.expect(tuple(out.shape) == (3, 7), f"your tags have shape {tuple(out.shape)}, expected (3, 7)",
             "one tag per position of each sentence: (B, T)")
    c.expect(out.dtype == torch.int64, f"your tags have dtype {out.dtype}, expected torch.int64",
             "tags are indices: keep argmax's int64 (torch.long), do not convert them")
    want = crf.crf_viterbi(e, tr, s, en)
    c.diagnose(out, _viterbi_mistakes(e, tr, s, en), "your path matches a known mistake", correct=want)
    if not torch.equal(out, want):
        mine, best = crf.crf_score(e, out.clamp(0, 3), tr, s, en), crf.crf_score(e, want, tr, s, en)
        c.fail(f"your paths score {[round(x, 2) for x in mine.tolist()]}, the best ones "
               f"{[round(x, 2) for x in best.tolist()]}",
               "delta_t[j] = max over i of (delta_{t-1}[i] + transitions[i, j]) + emissions[:, t, j]; remember the "
               "best i of every j, then follow those pointers back from the best last tag")
    c.passed += 1
    # on a tiny input, every path can be listed: the best one is the argmax of their scores
    e2, tr2, s2, en2 = _crf_inputs(1, 3, 4, seed=23)
    paths = torch.cartesian_prod(*[torch.arange(4)] * 3)
    top = paths[crf.crf_score(e2.expand(64, 3, 4), paths, tr2, s2, en2).argmax()]
    got = c.call(e2, tr2, s2, en2)
    c.expect(isinstance(got, torch.Tensor) and got.tolist() == [top.tolist()],
             f"on emissions (1, 3, 4) you gave {got.tolist() if isinstance(got, torch.Tensor) else got}, "
             f"but the best of the 64 paths is {[top.tolist()]}", "")


def nll_and_grads(fn, emissions, tags, transitions, start, end):
    """Harness: ``fn``'s loss and its gradients with respect to the emissions and the three score tables (None
    where it has none). It runs where ``fn`` lives (in a class run, in the learner's kernel): the graph cannot
    travel."""
    leaves = [x.clone().requires_grad_(True) for x in (emissions, transitions, start, end)]
    out = fn(leaves[0], tags, *leaves[1:])
    if isinstance(out, torch.Tensor) and out.ndim == 0 and out.requires_grad:
        out.backward()
        return out.detach(), [x.grad for x in leaves]
    return out, None


def _nll_mistakes(e, y, tr, s, en) -> dict[str, torch.Tensor]:
    log_z = crf.crf_log_partition(e, tr, s, en)
    score = lambda tr=tr, s=s, en=en: crf.crf_score(e, y, tr, s, en)  # noqa: E731
    zero = torch.zeros_like(s)
    best = crf.crf_score(e, crf.crf_viterbi(e, tr, s, en), tr, s, en)  # max instead of logsumexp in log Z
    return {
        "the negative log-likelihood is log Z - score(gold), not score - log Z (the log-likelihood)":
            (score() - log_z).mean(),
        "average over the batch (mean), do not sum over it": (log_z - score()).sum(),
        "log Z sums over all paths (logsumexp), the best path's score (max) is not it": (best - score()).mean(),
        "the gold path's score starts with start[tags[:, 0]]": (log_z - score(s=zero)).mean(),
        "the gold path's score ends with end[tags[:, -1]]": (log_z - score(en=zero)).mean(),
        "transitions[i, j] is the score of going from i to j: the gold path uses transitions[tags[:, t-1], tags[:, t]]":
            (log_z - score(tr=tr.T)).mean(),
        "a loss to minimise, not a probability: log Z - score, without exp": (log_z - score()).exp().mean(),
    }


def _scalar_loss(c: Check, out, what: str) -> torch.Tensor:
    c.expect(isinstance(out, torch.Tensor), f"{what} returned {type(out).__name__}, expected a torch.Tensor",
             "return the loss as a tensor (no .item() or float()): training calls .backward() on it")
    c.expect(out.ndim == 0, f"{what} has shape {tuple(out.shape)}, expected a scalar (shape ())",
             "average over the batch: one number for the whole batch")
    return out


@exercise("02.crf_nll", reference=crf.crf_nll, cases=lambda d: _crf_cases(d, tags=True))
def check_crf_nll(c: Check) -> None:
    e, tr, s, en = _crf_inputs(3, 6, 4, seed=31)
    y = torch.randint(0, 4, (3, 6), generator=torch.Generator().manual_seed(32))
    out = _scalar_loss(c, c.call(e, y, tr, s, en), "crf_nll(emissions (3, 6, 4), tags, ...)")
    c.expect(out.dtype == e.dtype, f"the loss has dtype {out.dtype}, expected {e.dtype}", DTYPE_HINT)
    want = crf.crf_nll(e, y, tr, s, en)
    c.diagnose(out, _nll_mistakes(e, y, tr, s, en), "your loss matches a known mistake", rtol=1e-5, correct=want)
    c.expect(float(out) >= 0, f"your loss is negative ({float(out):.4f})",
             "log Z >= the score of any single path, so log Z - score(gold) is never negative")
    c.close(out, want, "the loss differs from mean(log Z - score(gold))",
            "score(gold) = start[y_0] + sum of emissions[:, t, y_t] + sum of transitions[y_{t-1}, y_t] + end[y_{T-1}]")
    # the loss must train the model: its gradients are the reference's (expected minus observed counts)
    loss, grads = c.call(e, y, tr, s, en, via=nll_and_grads)
    c.expect(grads is not None and grads[0] is not None,
             "the loss has no gradient with respect to the emissions",
             "compute it with torch operations on the inputs (no .detach(), .item(), numpy or torch.tensor(...) of "
             "numbers)")
    leaves = [x.clone().requires_grad_(True) for x in (e, tr, s, en)]
    crf.crf_nll(leaves[0], y, *leaves[1:]).backward()
    for name, got, x in zip(("emissions", "transitions", "start", "end"), grads, leaves):
        c.expect(got is not None, f"the loss has no gradient with respect to {name}",
                 f"use {name} in the computation as a tensor, not as numbers taken out of it")
        c.close(got, x.grad, f"the gradient with respect to {name}",
                "keep log Z in the graph (no .detach() or torch.no_grad()): its gradient gives the expected counts "
                "that the gold path's counts are compared with")


def _windows_cases(d: Draw) -> list[Case]:
    T = d.int(4, 12)
    ids = d.randint(2, 500, (T,))
    return [Case("another width", ids, d.choice([1, 3, 4]), 0,
                 hint="the window has 2 width + 1 columns, offsets -width .. +width: use the width argument"),
            Case("width 0 (the character alone)", ids, 0, 0),
            Case("another padding id", ids, 2, d.int(1, 9),
                 hint="positions outside the sentence get pad_id (the argument), not 0"),
            Case("a sentence shorter than the window", d.randint(2, 500, (d.int(1, 2),)), 3, 0,
                 hint="a short sentence has padding on both sides of the same window: pad first, then cut windows"),
            Case("a longer sentence", d.randint(2, 5000, (d.int(30, 60),)), 2, 0),
            Case("int32 ids", d.randint(2, 500, (d.int(3, 10),)).int(), 2, 0,
                 hint="the windows are int64 whatever ids' dtype (they index an embedding table): create the padded "
                      "row with dtype=torch.long, not ids.dtype")]


@exercise("02.char_windows", reference=crf.char_windows, cases=_windows_cases)
def check_char_windows(c: Check) -> None:
    ids = torch.tensor([5, 6, 7, 8, 9, 10])
    out = c.call(ids, 2, 0)
    c.expect_tensor(out, shape=(6, 5), name="char_windows(ids (6,), width=2, pad_id=0)")
    c.expect(out.dtype == torch.int64, f"your windows have dtype {out.dtype}, expected torch.int64",
             "ids index an embedding table: keep them int64 (create the padding with dtype=torch.long)")
    want = crf.char_windows(ids, 2, 0)
    c.diagnose(out, {
        "column k holds the character at offset k - width: the first column is the one before, ids[t - width]":
            want.flip(-1),
        "the middle column (k = width) is the character itself: out[t, width] = ids[t]":
            crf.char_windows(torch.tensor([6, 7, 8, 9, 10, 0]), 2, 0),
        "pad where a window goes past either end (with pad_id), do not wrap around to the other end (torch.roll)":
            torch.stack([ids.roll(2 - k) for k in range(5)], dim=1),
    }, f"char_windows(tensor([5, 6, 7, 8, 9, 10]), 2, 0) gave {out.tolist()}", correct=want)
    c.expect(torch.equal(out, want), f"char_windows([5, 6, 7, 8, 9, 10], 2, 0) gave {out.tolist()}, expected "
             f"{want.tolist()}", "out[t, k] = ids[t + k - width], or pad_id where t + k - width is outside 0 .. T-1")
    one = c.call(torch.tensor([42]), 2, 0)
    c.expect(isinstance(one, torch.Tensor) and one.tolist() == [[0, 0, 42, 0, 0]],
             f"a one-character sentence gave {one.tolist() if isinstance(one, torch.Tensor) else one}, expected "
             "[[0, 0, 42, 0, 0]]", "a window that reaches past both ends is padded on both sides")
