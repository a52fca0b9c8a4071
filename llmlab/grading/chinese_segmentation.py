"""Checks for notebook 02_chinese_segmentation."""
from __future__ import annotations

from functools import lru_cache

from llmlab.grading.core import Check
from llmlab.tokenization import chinese as zh

SENTENCES = [
    "研究生命起源", "我来到北京清华大学", "他来到了网易杭研大厦", "结婚的和尚未结婚的", "南京市长江大桥",
    "乒乓球拍卖完了", "大语言模型推理要又快又小", "欧阳娜娜在第三季度发布了新歌", "小明硕士毕业于中国科学院计算所",
    "中华人民共和国成立了", "吃葡萄不吐葡萄皮",
]


@lru_cache(maxsize=1)
def _dictionary() -> zh.Dictionary:
    return zh.load_dictionary()


@lru_cache(maxsize=1)
def _hmm() -> zh.HMM:
    return zh.HMM.from_jieba()


def _words(c: Check, out, text: str, what: str) -> list[str]:
    c.expect(isinstance(out, list) and all(isinstance(w, str) for w in out),
             f"{what} returned {type(out).__name__}, expected a list of str", "collect the words in a list")
    if "".join(out) != text:
        c.fail(f"{what} gave {out}, which does not spell {text!r}",
               "every character must land in exactly one word: a character that starts no word is a word by itself")
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


def _check_max_match(c: Check, backward: bool) -> None:
    d = _dictionary()
    mine = zh.backward_max_match if backward else zh.forward_max_match
    other = zh.forward_max_match if backward else zh.backward_max_match
    outs = [c.call(text, d, d.max_len) for text in SENTENCES]
    wants = [mine(text, d) for text in SENTENCES]
    # a mistake is named only when it explains the answers on every sentence
    mistakes = {
        "you collected the words right to left: reverse the list at the end": [w[::-1] for w in wants],
        "take the longest word first: try lengths from max_len down to 1":
            [_shortest_first(t, d, d.max_len, backward) for t in SENTENCES],
        "that is the other direction: " + ("start from the end of the text" if backward else "start from the beginning"):
            [other(t, d) for t in SENTENCES],
    }
    for hint, answers in mistakes.items():
        if outs == answers and outs != wants:
            text, out, want = next((t, o, w) for t, o, w in zip(SENTENCES, outs, wants) if o != w)
            c.fail(f"on {text!r} you gave {out}, expected {want}", hint)
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
    c.done()


def check_forward_max_match(fn) -> None:
    _check_max_match(Check("02.forward_max_match", fn), backward=False)


def check_backward_max_match(fn) -> None:
    _check_max_match(Check("02.backward_max_match", fn), backward=True)


def _choose(fmm: list[str], bmm: list[str]) -> list[str]:
    """The reference rule, on given FMM and BMM results."""
    if fmm == bmm:
        return bmm
    if len(fmm) != len(bmm):
        return fmm if len(fmm) < len(bmm) else bmm
    return fmm if sum(len(w) == 1 for w in fmm) < sum(len(w) == 1 for w in bmm) else bmm


def check_choose_segmentation(fn) -> None:
    c = Check("02.choose_segmentation", fn)
    cases = [
        (["研究生", "命", "起源"], ["研究", "生命", "起源"], "same number of words: fewer single characters wins"),
        (["结婚", "的", "和尚", "未", "结婚", "的"], ["结婚", "的", "和", "尚未", "结婚", "的"], "a full tie goes to BMM"),
        (["中华人民共和国", "成立"], ["中华", "人民共和国", "成立"], "fewer words wins"),
        (["南京", "市长", "江", "大桥"], ["南京市", "长江大桥"], "fewer words wins"),
        (["我", "爱", "你"], ["我", "爱", "你"], "when both agree, return either"),
        (["ab", "c", "de"], ["a", "bc", "de"], "a full tie goes to BMM"),
        (["北京大学", "生活"], ["北", "京大学生活"], "same number of words: fewer single characters wins"),
    ]
    for fmm, bmm, rule in cases:
        out = c.call(fmm, bmm)
        want = _choose(fmm, bmm)
        if out != want:
            if rule == "fewer words wins":
                hint = "when the word counts differ, the result with fewer words wins"
            elif rule.startswith("same number"):
                hint = "with equal word counts, compare the number of single-character words"
            elif rule.startswith("a full tie"):
                hint = "when words and single characters tie, prefer BMM (right more often on Chinese)"
            else:
                hint = rule
            c.fail(f"FMM {fmm} vs BMM {bmm}: you chose {out}, expected {want}", hint)
        c.passed += 1
    c.done()


def _has(obj, i) -> bool:
    try:
        obj[i]
        return True
    except (KeyError, IndexError):
        return False


def check_build_dag(fn) -> None:
    c = Check("02.build_dag", fn)
    d = _dictionary()
    for text in SENTENCES + ["去北京大学玩", "🙂ABC"]:
        out = c.call(text, d)
        if not hasattr(out, "__getitem__") or any(not _has(out, i) or not out[i] for i in range(len(text))):
            c.fail(f"for {text!r} some position has no entry (or an empty list)",
                   "give every position i a list; when no word starts at i, DAG[i] = [i]: the character alone")
        got = {i: sorted(out[i]) for i in range(len(text))}
        want = zh.build_dag(text, d)
        if got == want:
            c.passed += 1
            continue
        exclusive = {i: [j + 1 for j in js] for i, js in want.items()}
        if got == exclusive:
            c.fail(f"for {text!r} your end positions are one too large",
                   "DAG[i] holds inclusive ends j: the word is sentence[i:j + 1]")
        if any(set(got[i]) > set(want[i]) for i in want):
            c.fail(f"for {text!r} your DAG has ends that are not words",
                   "a prefix with frequency 0 is not a word: record j only when freq > 0")
        if any(set(got[i]) < set(want[i]) for i in want):
            c.fail(f"for {text!r} your DAG misses some longer words (e.g. DAG[1] of '去北京大学玩' should be [1, 2, 4])",
                   "keep extending while the fragment is in dictionary.freq (a prefix of some word), even when it is not a word itself")
        c.fail(f"for {text!r} you gave {got}, expected {want}", "DAG[i] lists every j with sentence[i:j+1] a word")
    c.done()


def check_best_route(fn) -> None:
    c = Check("02.best_route", fn)
    d = _dictionary()
    hints = {"math domain error": "a fragment missing from the dictionary counts as frequency 1: use (freq or 1)"}
    for text in SENTENCES + ["🙂ABC北京"]:
        dag = zh.build_dag(text, d)
        out = c.call(text, dag, d, error_hints=hints)
        c.expect(hasattr(out, "__getitem__") and all(_has(out, i) for i in range(len(text) + 1)),
                 f"for {text!r} your route should have an entry for every position 0..{len(text)}",
                 "route[N] = (0.0, 0) ends the recursion")
        want = zh.best_route(text, dag, d)
        ends = [out[i][1] for i in range(len(text))]
        if ends == [w[1] for w in want[: len(text)]] and all(abs(out[i][0] - want[i][0]) < 1e-6 for i in range(len(text) + 1)):
            c.passed += 1
            continue
        words = zh.route_words(text, out) if all(i < out[i][1] + 1 for i in range(len(text))) else None
        unnormalised = zh.Dictionary(d.freq, 1, d.max_len)
        if words == zh.route_words(text, zh.best_route(text, dag, unnormalised)) and words != zh.route_words(text, want):
            c.fail(f"for {text!r} your route gives {words}", "use log-probabilities: log(freq) - log(total), not log(freq)")
        if abs(out[0][0] - want[0][0]) > 1e-6 and words == zh.route_words(text, want):
            c.fail(f"for {text!r} route[0] scores {out[0][0]:.4f}, expected {want[0][0]:.4f}",
                   "route[i] = max over j of log p(sentence[i:j+1]) + route[j+1][0]")
        c.fail(f"for {text!r} your route gives {words}, expected {zh.route_words(text, want)}",
               "fill route from the right end (i = N-1 down to 0): each choice needs the best score of what follows")
    c.done()


def check_viterbi(fn) -> None:
    c = Check("02.viterbi", fn)
    hmm = _hmm()
    for text in ["欧阳娜娜", "杭研大厦", "我", "他来到了网易杭研大厦", "生活就像一盒巧克力", "小明硕士毕业于中国科学院计算所"]:
        out = c.call(text, hmm)
        c.expect(len(out) == len(text) and all(t in "BMES" for t in out),
                 f"for {text!r} you returned {out!r}, expected one tag of 'BMES' per character", "")
        out = list(out)
        want = zh.viterbi(text, hmm)
        if out == want:
            c.passed += 1
            continue
        if out[-1] in "BM":
            c.fail(f"for {text!r} your tags {''.join(out)} end inside a word",
                   "the last character must end a word: choose the best final state among E and S only")
        greedy = [max("BMES", key=lambda y: hmm.emit[y].get(ch, zh.MIN_LOG)) for ch in text]
        if out == greedy:
            c.fail(f"for {text!r} you tagged each character on its own: {''.join(out)}",
                   "each tag depends on the previous one: keep, for every state, the best score and the path that reached it")
        c.fail(f"for {text!r} you gave {''.join(out)}, expected {''.join(want)}",
               "V_t(y) = max over allowed y' of V_{t-1}(y') + trans[y'][y] + emit[y][c_t]; start with start[y] + emit[y][c_0]")
    c.done()


def check_tags_to_words(fn) -> None:
    c = Check("02.tags_to_words", fn)
    cases = [("欧阳娜娜", "BEBE"), ("我爱北京", "SSBE"), ("杭研大厦", "BMME"), ("一二三", "SBE"), ("一二三", "SSB"),
             ("一二三四", "SBMM"), ("好", "S")]
    for chars, tags in cases:
        out = _words(c, c.call(chars, tags), chars, f"tags_to_words({chars!r}, {tags!r})")
        want = zh.tags_to_words(chars, tags)
        if out != want:
            if tags[-1] in "BM":
                c.fail(f"tags_to_words({chars!r}, {tags!r}) gave {out}, expected {want}",
                       "a word still open at the end (last tag B or M) must be kept")
            c.fail(f"tags_to_words({chars!r}, {tags!r}) gave {out}, expected {want}", "a word ends after every E and every S")
        c.passed += 1
    c.done()


def check_word_spans(fn) -> None:
    c = Check("02.word_spans", fn)
    for words in [["我们", "喜欢", "火锅"], ["的", "的", "的"], ["研究生", "命", "起源"], []]:
        out = c.call(words)
        c.expect(isinstance(out, (set, frozenset, list, tuple)), f"you returned {type(out).__name__}", "return a set of (start, end) pairs")
        got = set(map(tuple, out))
        want = zh.word_spans(words)
        if got != want:
            inclusive = {(s, e - 1) for s, e in want}
            if got == inclusive:
                c.fail(f"{words} gave {sorted(got)}, expected {sorted(want)}", "end is exclusive: a word of length L at s spans (s, s + L)")
            if len(got) < len(want) or any(s == 0 for s, _ in got if (s, _) not in want):
                c.fail(f"{words} gave {sorted(got)}, expected {sorted(want)}",
                       "each word starts where the previous one ended: keep a running offset")
            c.fail(f"{words} gave {sorted(got)}, expected {sorted(want)}", "")
        c.passed += 1
    c.done()


def check_span_prf(fn) -> None:
    c = Check("02.span_prf", fn)
    # sizes differ (8 gold, 10 predicted words), and 的/的的 recur at other positions, so that
    # swapping P and R, matching word strings, and averaging per sentence all give other numbers
    gold = [["我们", "喜欢", "火锅"], ["的", "的的"], ["研究", "生命", "起源"]]
    pred = [["我们", "喜", "欢", "火锅"], ["的的", "的"], ["研究生", "命", "起", "源"]]
    out = c.call(gold, pred)
    c.expect(isinstance(out, tuple) and len(out) == 3, f"you returned {out!r}, expected (precision, recall, f1)", "")
    s = zh.evaluate(gold, pred)
    want = (s.precision, s.recall, s.f1)
    if all(abs(a - b) < 1e-9 for a, b in zip(out, want)):
        c.passed += 1
    else:
        hit_words = sum(len(set(g) & set(p)) for g, p in zip(gold, pred))
        n_gold, n_pred = sum(map(len, gold)), sum(map(len, pred))
        if abs(out[0] - want[1]) < 1e-9 and abs(out[1] - want[0]) < 1e-9:
            c.fail(f"you returned P={out[0]:.3f}, R={out[1]:.3f}, expected P={want[0]:.3f}, R={want[1]:.3f}",
                   "precision divides by the predicted words, recall by the gold words")
        if abs(out[0] - hit_words / n_pred) < 1e-9 or abs(out[1] - hit_words / n_gold) < 1e-9:
            c.fail(f"you returned {tuple(round(x, 3) for x in out)}, expected {tuple(round(x, 3) for x in want)}",
                   "compare word spans, not word strings: the same word at another position is not a match")
        per = [zh.evaluate([g], [p]) for g, p in zip(gold, pred)]
        if abs(out[0] - sum(x.precision for x in per) / len(per)) < 1e-9:
            c.fail(f"you returned {tuple(round(x, 3) for x in out)}, expected {tuple(round(x, 3) for x in want)}",
                   "micro-average: add up matches and counts over all sentences, then divide once")
        c.fail(f"you returned {tuple(round(x, 3) for x in out)}, expected {tuple(round(x, 3) for x in want)}",
               "P = |gold ∩ pred| / |pred|, R = |gold ∩ pred| / |gold|, F1 = 2PR / (P + R)")
    perfect = c.call([["一", "二"]], [["一", "二"]])
    c.expect(tuple(perfect) == (1.0, 1.0, 1.0), f"identical segmentations gave {perfect}", "")
    zero = c.call([["一二"]], [["一", "二"]])
    c.expect(tuple(zero) == (0.0, 0.0, 0.0), f"no common span gave {zero}, expected (0.0, 0.0, 0.0)",
             "F1 is 0 when P + R is 0 (avoid dividing by zero)")
    c.done()
