"""Common mistakes in 02_chinese_segmentation."""
import math

import torch

from llmlab.grading import chinese_segmentation as grade
from llmlab.tokenization import chinese as zh
from llmlab.tokenization import crf
from tests.mutants import mistake

_choose = grade.check_choose_segmentation.reference
_spf = grade.check_span_prf.reference


REFERENCE = {
    "check_forward_max_match": zh.forward_max_match,
    "check_backward_max_match": zh.backward_max_match,
    "check_choose_segmentation": _choose,
    "check_build_dag": zh.build_dag,
    "check_best_route": zh.best_route,
    "check_viterbi": zh.viterbi,
    "check_tags_to_words": zh.tags_to_words,
    "check_word_spans": zh.word_spans,
    "check_span_prf": _spf,
    "check_train_hmm": zh.train_hmm,
    "check_crf_log_partition": crf.crf_log_partition,
    "check_crf_viterbi": crf.crf_viterbi,
    "check_crf_nll": crf.crf_nll,
    "check_char_windows": crf.char_windows,
}


# maximum matching
@mistake("check_forward_max_match", "longest word first")
def fmm_shortest_first(text, dictionary, max_len):
    words, i = [], 0
    while i < len(text):
        j = next((j for j in range(i + 2, min(len(text), i + max_len) + 1) if text[i:j] in dictionary), i + 1)
        words.append(text[i:j])
        i = j
    return words


@mistake("check_forward_max_match", "exactly max_len characters long")
def fmm_window_too_short(text, dictionary, max_len):
    words, i = [], 0
    while i < len(text):
        for j in range(min(len(text), i + max_len - 1), i, -1):
            if j == i + 1 or text[i:j] in dictionary:
                words.append(text[i:j])
                i = j
                break
        else:
            words.append(text[i])
            i += 1
    return words


@mistake("check_forward_max_match", "a word by itself")
def fmm_drops_unknown(text, dictionary, max_len):
    words, i = [], 0
    while i < len(text):
        for j in range(min(len(text), i + max_len), i, -1):
            if text[i:j] in dictionary:
                words.append(text[i:j])
                i = j
                break
        else:
            i += 1
    return words


@mistake("check_forward_max_match", "start from the beginning")
def fmm_is_backward(text, dictionary, max_len):
    return zh.backward_max_match(text, dictionary, max_len)


@mistake("check_backward_max_match", "reverse the list")
def bmm_not_reversed(text, dictionary, max_len):
    return zh.backward_max_match(text, dictionary, max_len)[::-1]


@mistake("check_backward_max_match", "start from the end")
def bmm_is_forward(text, dictionary, max_len):
    return zh.forward_max_match(text, dictionary, max_len)


@mistake("check_backward_max_match", "longest word first")
def bmm_shortest_first(text, dictionary, max_len):
    words, j = [], len(text)
    while j > 0:
        i = next((i for i in range(j - 2, max(0, j - max_len) - 1, -1) if text[i:j] in dictionary), j - 1)
        words.append(text[i:j])
        j = i
    return words[::-1]


# choosing between FMM and BMM
@mistake("check_choose_segmentation", "fewer words wins")
def choose_more_words(fmm, bmm):
    if len(fmm) != len(bmm):
        return fmm if len(fmm) > len(bmm) else bmm
    return bmm


@mistake("check_choose_segmentation", "single-character words")
def choose_ignores_singles(fmm, bmm):
    return fmm if len(fmm) < len(bmm) else bmm


@mistake("check_choose_segmentation", "prefer BMM")
def choose_fmm_on_tie(fmm, bmm):
    if len(fmm) != len(bmm):
        return fmm if len(fmm) < len(bmm) else bmm
    singles = lambda ws: sum(len(w) == 1 for w in ws)  # noqa: E731
    return bmm if singles(bmm) < singles(fmm) else fmm


# DAG
@mistake("check_build_dag", "DAG[i] = [i]")
def dag_no_fallback(sentence, dictionary):
    dag = zh.build_dag(sentence, dictionary)
    return {i: [j for j in js if sentence[i : j + 1] in dictionary] for i, js in dag.items()}


@mistake("check_build_dag", "keep extending while the fragment is in dictionary.freq")
def dag_stops_at_non_words(sentence, dictionary):
    dag = {}
    for i in range(len(sentence)):
        ends, j = [], i
        while j < len(sentence) and sentence[i : j + 1] in dictionary:
            ends.append(j)
            j += 1
        dag[i] = ends or [i]
    return dag


@mistake("check_build_dag", "frequency 0 is not a word")
def dag_includes_prefixes(sentence, dictionary):
    dag = {}
    for i in range(len(sentence)):
        ends, j = [], i
        while j < len(sentence) and sentence[i : j + 1] in dictionary.freq:
            ends.append(j)
            j += 1
        dag[i] = ends or [i]
    return dag


@mistake("check_build_dag", "inclusive ends")
def dag_exclusive_ends(sentence, dictionary):
    return {i: [j + 1 for j in js] for i, js in zh.build_dag(sentence, dictionary).items()}


# route
@mistake("check_best_route", "(freq or 1)")
def route_log_zero(sentence, dag, dictionary):
    n, route = len(sentence), {len(sentence): (0.0, 0)}
    for i in range(n - 1, -1, -1):
        route[i] = max((math.log(dictionary.freq.get(sentence[i : j + 1], 0)) - math.log(dictionary.total)
                        + route[j + 1][0], j) for j in dag[i])
    return route


@mistake("check_best_route", "log(freq) - log(total)")
def route_unnormalised(sentence, dag, dictionary):
    n, route = len(sentence), {len(sentence): (0.0, 0)}
    for i in range(n - 1, -1, -1):
        route[i] = max((math.log(dictionary.freq.get(sentence[i : j + 1]) or 1) + route[j + 1][0], j) for j in dag[i])
    return route


@mistake("check_best_route", "from the right end")
def route_greedy_left_to_right(sentence, dag, dictionary):
    route = {len(sentence): (0.0, 0)}
    for i in range(len(sentence)):
        route[i] = max((math.log(dictionary.freq.get(sentence[i : j + 1]) or 1) - math.log(dictionary.total), j) for j in dag[i])
    return route


# Viterbi
@mistake("check_viterbi", "among E and S only")
def viterbi_any_final_state(chars, hmm):
    score = {y: hmm.start[y] + hmm.emit[y].get(chars[0], zh.MIN_LOG) for y in "BMES"}
    paths = {y: [y] for y in "BMES"}
    for c in chars[1:]:
        new_score, new_paths = {}, {}
        for y in "BMES":
            best, prev = max((score[y0] + hmm.trans[y0].get(y, zh.MIN_LOG) + hmm.emit[y].get(c, zh.MIN_LOG), y0) for y0 in zh.PREVIOUS[y])
            new_score[y], new_paths[y] = best, paths[prev] + [y]
        score, paths = new_score, new_paths
    return paths[max("BMES", key=lambda y: score[y])]


@mistake("check_viterbi", "each tag depends on the previous one")
def viterbi_greedy(chars, hmm):
    return [max("BMES", key=lambda y: hmm.emit[y].get(c, zh.MIN_LOG)) for c in chars]


@mistake("check_viterbi", "start with start[y]")
def viterbi_no_start(chars, hmm):
    flat = zh.HMM({y: 0.0 for y in "BMES"}, hmm.trans, hmm.emit)
    return zh.viterbi(chars, flat)


# tags -> words
@mistake("check_tags_to_words", "does not spell")
def tags_drops_open_word(chars, tags):
    words, begin = [], 0
    for i, t in enumerate(tags):
        if t == "B":
            begin = i
        elif t == "E":
            words.append(chars[begin : i + 1])
        elif t == "S":
            words.append(chars[i])
    return words


@mistake("check_tags_to_words", "a word ends after every E and every S")
def tags_cuts_after_b(chars, tags):
    words, begin = [], 0
    for i, t in enumerate(tags):
        if t in "BES":
            words.append(chars[begin : i + 1])
            begin = i + 1
    if begin < len(chars):
        words.append(chars[begin:])
    return words


# spans and scores
@mistake("check_word_spans", "end is exclusive")
def spans_inclusive(words):
    spans, i = set(), 0
    for w in words:
        spans.add((i, i + len(w) - 1))
        i += len(w)
    return spans


@mistake("check_word_spans", "running offset")
def spans_no_offset(words):
    return {(0, len(w)) for w in words}


@mistake("check_span_prf", "precision divides by the predicted words")
def prf_swapped(gold, pred):
    p, r, f = _spf(gold, pred)
    return r, p, f


@mistake("check_span_prf", "compare word spans, not word strings")
def prf_word_strings(gold, pred):
    hit = sum(len(set(g) & set(p)) for g, p in zip(gold, pred))
    p, r = hit / sum(map(len, pred)), hit / sum(map(len, gold))
    return p, r, 2 * p * r / (p + r) if p + r else 0.0


@mistake("check_span_prf", "micro-average")
def prf_macro(gold, pred):
    per = [_spf([g], [p]) for g, p in zip(gold, pred)]
    return tuple(sum(x[k] for x in per) / len(per) for k in range(3))


# ---------------------------------------------------------------- right on the examples shown, wrong in general

@mistake("check_forward_max_match", "do not cap it at the longest word shown", kind="overfit")
def fmm_capped_at_seven(text, dictionary, max_len):
    return zh.forward_max_match(text, dictionary, min(max_len, 7))  # 中华人民共和国, the longest word in the examples


@mistake("check_backward_max_match", "do not cap it at the longest word shown", kind="overfit")
def bmm_capped_at_seven(text, dictionary, max_len):
    words, j = [], len(text)
    while j > 0:
        i = next(i for i in range(max(0, j - min(max_len, 7)), j) if i == j - 1 or text[i:j] in dictionary)
        words.insert(0, text[i:j])
        j = i
    return words


@mistake("check_choose_segmentation", "the word count decides first", kind="overfit")
def choose_singles_first(fmm, bmm):
    singles = lambda ws: sum(len(w) == 1 for w in ws)  # noqa: E731
    if singles(fmm) != singles(bmm):
        return fmm if singles(fmm) < singles(bmm) else bmm
    return fmm if len(fmm) < len(bmm) else bmm


@mistake("check_build_dag", "not up to a fixed length", kind="overfit")
def dag_brute_force_seven(sentence, dictionary):
    return {i: [j for j in range(i, min(len(sentence), i + 7)) if sentence[i : j + 1] in dictionary] or [i]
            for i in range(len(sentence))}


@mistake("check_best_route", "keep the larger j", kind="overfit")
def route_ties_to_first_end(sentence, dag, dictionary):
    route = {len(sentence): (0.0, 0)}
    for i in range(len(sentence) - 1, -1, -1):
        scores = {j: math.log(dictionary.freq.get(sentence[i : j + 1]) or 1) - math.log(dictionary.total) + route[j + 1][0]
                  for j in dag[i]}
        j = max(dag[i], key=scores.get)  # the first of equal scores: the smaller j
        route[i] = (scores[j], j)
    return route


@mistake("check_best_route", "use the dag you are given", kind="overfit")
def route_rebuilds_dag(sentence, dag, dictionary):
    return zh.best_route(sentence, zh.build_dag(sentence, dictionary), dictionary)


@mistake("check_viterbi", "not 0", kind="overfit")
def viterbi_missing_emission_zero(chars, hmm):
    score = {y: hmm.start[y] + hmm.emit[y].get(chars[0], 0.0) for y in "BMES"}
    paths = {y: [y] for y in "BMES"}
    for c in chars[1:]:
        new_score, new_paths = {}, {}
        for y in "BMES":
            best, prev = max((score[y0] + hmm.trans[y0][y] + hmm.emit[y].get(c, 0.0), y0) for y0 in zh.PREVIOUS[y])
            new_score[y], new_paths[y] = best, paths[prev] + [y]
        score, paths = new_score, new_paths
    return paths[max((score[y], y) for y in "ES")[1]]


@mistake("check_viterbi", "break ties by (score, state) tuples", kind="overfit")
def viterbi_first_state_on_ties(chars, hmm):
    score = {y: hmm.start[y] + hmm.emit[y].get(chars[0], zh.MIN_LOG) for y in "BMES"}
    paths = {y: [y] for y in "BMES"}
    for c in chars[1:]:
        new_score, new_paths = {}, {}
        for y in "BMES":
            prev = max(zh.PREVIOUS[y], key=lambda y0: score[y0] + hmm.trans[y0][y])
            new_score[y] = score[prev] + hmm.trans[prev][y] + hmm.emit[y].get(c, zh.MIN_LOG)
            new_paths[y] = paths[prev] + [y]
        score, paths = new_score, new_paths
    return paths[max("ES", key=score.get)]


@mistake("check_tags_to_words", "do not call str methods on them", kind="overfit")
def tags_with_a_regex(chars, tags):
    import re

    return [chars[m.start() : m.end()] for m in re.finditer(r"BM*E|BM*$|S|M+E?$", tags)]


@mistake("check_tags_to_words", "the first word starts at position 0", kind="overfit")
def tags_words_start_at_b_or_s(chars, tags):
    starts = [i for i, t in enumerate(tags) if t in "BS"] + [len(chars)]
    return [chars[a:b] for a, b in zip(starts, starts[1:])]


@mistake("check_word_spans", "keep a running offset", kind="overfit")
def spans_found_by_search(words):
    text, spans, i = "".join(words), set(), 0
    for w in words:
        i = text.index(w, i)
        spans.add((i, i + len(w)))
        i += 1
    return spans


@mistake("check_span_prf", "not of distinct words", kind="overfit")
def prf_counts_distinct_words(gold, pred):
    hit = sum(len(zh.word_spans(g) & zh.word_spans(p)) for g, p in zip(gold, pred))
    n_gold, n_pred = sum(len(set(g)) for g in gold), sum(len(set(p)) for p in pred)
    p, r = hit / n_pred, hit / n_gold
    return p, r, 2 * p * r / (p + r) if p + r else 0.0


# ---------------------------------------------------------------- changing the caller's inputs

@mistake("check_best_route", "leave the inputs as they are", kind="inplace")
def route_sorts_dag_in_place(sentence, dag, dictionary):
    for ends in dag.values():
        ends.sort(reverse=True)  # longest word first, so that ties go to the larger j
    return zh.best_route(sentence, dag, dictionary)



@mistake("check_tags_to_words", "the first word starts at position 0")
def tags_drops_leading_middle(chars, tags):
    words, begin = [], None
    for i, t in enumerate(tags):
        if t == "B":
            begin = i
        elif t == "E":
            words.append(chars[i if begin is None else begin : i + 1])
            begin = None
        elif t == "S":
            words.append(chars[i])
            begin = None
    if begin is not None:
        words.append(chars[begin:])
    return words


@mistake("check_viterbi", "the later letter wins for the previous state too")
def viterbi_first_previous_on_ties(chars, hmm):
    score = {y: hmm.start[y] + hmm.emit[y].get(chars[0], zh.MIN_LOG) for y in "BMES"}
    paths = {y: [y] for y in "BMES"}
    for c in chars[1:]:
        new_score, new_paths = {}, {}
        for y in "BMES":
            prev = max(zh.PREVIOUS[y], key=lambda y0: score[y0] + hmm.trans[y0].get(y, zh.MIN_LOG))
            new_score[y] = score[prev] + hmm.trans[prev].get(y, zh.MIN_LOG) + hmm.emit[y].get(c, zh.MIN_LOG)
            new_paths[y] = paths[prev] + [y]
        score, paths = new_score, new_paths
    return paths[max((score[y], y) for y in "ES")[1]]


@mistake("check_best_route", "route[j+1][0]")
def route_adds_route_j(sentence, dag, dictionary):
    n = len(sentence)
    route = [(0.0, 0)] * (n + 1)
    for i in range(n - 1, -1, -1):
        route[i] = max((math.log(dictionary.freq.get(sentence[i : j + 1]) or 1) - math.log(dictionary.total)
                        + route[j][0], j) for j in dag[i])
    return route


# HMM training by counting


@mistake("check_train_hmm", "do not count a transition from the last tag of one sentence")
def train_across_sentences(gold, alpha=1.0):
    return grade.counted_tables(gold, alpha, across=True)


@mistake("check_train_hmm", "start counts only the first tag of each sentence")
def train_start_from_every_tag(gold, alpha=1.0):
    return grade.counted_tables(gold, alpha, start_all=True)


@mistake("check_train_hmm", "the denominator adds 2 alpha, not 4 alpha")
def train_smooth_over_four_tags(gold, alpha=1.0):
    return grade.counted_tables(gold, alpha, k_states=4)


@mistake("check_train_hmm", "under any tag")
def train_emit_own_characters(gold, alpha=1.0):
    return grade.counted_tables(gold, alpha, own_vocab=True)


@mistake("check_train_hmm", "impossible ones (B->B, E->M ...) are absent")
def train_smooths_impossible(gold, alpha=1.0):
    start, trans, emit = zh.train_hmm(gold, alpha)
    return start, {y0: {y: row.get(y, zh.MIN_LOG) for y in "BMES"} for y0, row in trans.items()}, emit


@mistake("check_train_hmm", "as a tuple of dicts")
def train_returns_list(gold, alpha=1.0):
    return list(zh.train_hmm(gold, alpha))


@mistake("check_train_hmm", "alpha is the argument", kind="overfit")
def train_alpha_fixed_at_one(gold, alpha=1.0):
    return zh.train_hmm(gold, 1.0)


@mistake("check_train_hmm", "leave the inputs as they are", kind="inplace")
def train_appends_end_marker(gold, alpha=1.0):
    for words in gold:
        if words[-1] != "。":
            words.append("。")  # "every sentence ends with a full stop"
    return zh.train_hmm(gold, alpha)


# the linear-chain CRF: emissions (B, T, K), transitions[i, j] from i to j, start (K,), end (K,)
def _forward(emissions, transitions, start, end, reduce=torch.logsumexp, dim=1):
    alpha = start + emissions[:, 0]
    for t in range(1, emissions.shape[1]):
        alpha = reduce(alpha[:, :, None] + transitions, dim) + emissions[:, t]
    return reduce(alpha + end, 1)


def _max(x, dim):
    return x.max(dim).values


@mistake("check_crf_log_partition", "logsumexp, not max")
def partition_max(emissions, transitions, start, end):
    return _forward(emissions, transitions, start, end, reduce=_max)


@mistake("check_crf_log_partition", "alpha_0 = start + emissions[:, 0]")
def partition_no_start(emissions, transitions, start, end):
    return _forward(emissions, transitions, torch.zeros_like(start), end)


@mistake("check_crf_log_partition", "add end[y] before the final logsumexp")
def partition_no_end(emissions, transitions, start, end):
    return _forward(emissions, transitions, start, torch.zeros_like(end))


@mistake("check_crf_log_partition", "the score of going from i to j")
def partition_transposed(emissions, transitions, start, end):
    return _forward(emissions, transitions.T, start, end)


@mistake("check_crf_log_partition", "not over the next tag j")
def partition_wrong_dim(emissions, transitions, start, end):
    return _forward(emissions, transitions, start, end, dim=2)


@mistake("check_crf_log_partition", "use torch.logsumexp", kind="overfit")
def partition_naive_exp(emissions, transitions, start, end):
    alpha = (start + emissions[:, 0]).exp()  # sums of exp-scores: fine for the small scores shown
    for t in range(1, emissions.shape[1]):
        alpha = (alpha @ transitions.exp()) * emissions[:, t].exp()
    return (alpha * end.exp()).sum(1).log()


@mistake("check_crf_log_partition", "do not assume the four tags", kind="overfit")
def partition_four_tags(emissions, transitions, start, end):
    alpha = start + emissions[:, 0]
    for t in range(1, emissions.shape[1]):
        alpha = torch.stack([torch.logsumexp(alpha + transitions[:, j], 1) for j in range(4)], 1) + emissions[:, t]
    return torch.logsumexp(alpha + end, 1)


@mistake("check_crf_log_partition", "leave the inputs as they are", kind="inplace")
def partition_adds_start_in_place(emissions, transitions, start, end):
    emissions[:, 0] += start  # the first position's scores, start included
    alpha = emissions[:, 0]
    for t in range(1, emissions.shape[1]):
        alpha = torch.logsumexp(alpha[:, :, None] + transitions, 1) + emissions[:, t]
    return torch.logsumexp(alpha + end, 1)


@mistake("check_crf_log_partition", "return the dtype the input has", kind="dtype")
def partition_float32(emissions, transitions, start, end):
    return crf.crf_log_partition(*(x.float() for x in (emissions, transitions, start, end)))


def _viterbi(emissions, transitions, start, end, strict=True, k=None):
    """Viterbi in Python loops over the tags: ties to the lowest index with a strict >, to the highest with >=;
    ``k`` the number of tags looped over."""
    B, T, K = emissions.shape
    k = K if k is None else k
    paths = []
    for b in range(B):
        delta = [float(start[j] + emissions[b, 0, j]) for j in range(k)]
        back = []
        for t in range(1, T):
            new, ptr = [], []
            for j in range(k):
                best, arg = None, 0
                for i in range(k):
                    v = delta[i] + float(transitions[i, j])
                    if best is None or v > best or (not strict and v == best):
                        best, arg = v, i
                new.append(best + float(emissions[b, t, j]))
                ptr.append(arg)
            delta, back = new, back + [ptr]
        final = [delta[j] + float(end[j]) for j in range(k)]
        last = max(range(k), key=lambda j: (final[j], -j if strict else j))
        path = [last]
        for ptr in reversed(back):
            path.append(ptr[path[-1]])
        paths.append(path[::-1])
    return torch.tensor(paths, dtype=torch.int64)


@mistake("check_crf_viterbi", "not the argmax of each position's emissions")
def viterbi_crf_greedy(emissions, transitions, start, end):
    return emissions.argmax(-1)


@mistake("check_crf_viterbi", "delta_0 = start + emissions[:, 0]")
def viterbi_crf_no_start(emissions, transitions, start, end):
    return crf.crf_viterbi(emissions, transitions, torch.zeros_like(start), end)


@mistake("check_crf_viterbi", "add end[y] before choosing the last tag")
def viterbi_crf_no_end(emissions, transitions, start, end):
    return crf.crf_viterbi(emissions, transitions, start, torch.zeros_like(end))


@mistake("check_crf_viterbi", "the score of going from i to j")
def viterbi_crf_transposed(emissions, transitions, start, end):
    return crf.crf_viterbi(emissions, transitions.T, start, end)


@mistake("check_crf_viterbi", "reverse it")
def viterbi_crf_not_reversed(emissions, transitions, start, end):
    return crf.crf_viterbi(emissions, transitions, start, end).flip(-1)


@mistake("check_crf_viterbi", "off by one in the backtrack")
def viterbi_crf_backtrack_off_by_one(emissions, transitions, start, end):
    delta, back = start + emissions[:, 0], []
    for t in range(1, emissions.shape[1]):
        delta, best = (delta[:, :, None] + transitions).max(dim=1)
        delta = delta + emissions[:, t]
        back.append(best)
    path = [(delta + end).argmax(1)]
    for t in range(emissions.shape[1] - 2, -1, -1):
        path.append(back[max(t - 1, 0)].gather(1, path[-1][:, None]).squeeze(1))  # back[t] is position t + 1's
    return torch.stack(path[::-1], dim=1)


@mistake("check_crf_viterbi", "keep the lowest tag index", kind="overfit")
def viterbi_crf_ties_to_last(emissions, transitions, start, end):
    return _viterbi(emissions, transitions, start, end, strict=False)


@mistake("check_crf_viterbi", "do not assume the four tags", kind="overfit")
def viterbi_crf_four_tags(emissions, transitions, start, end):
    return _viterbi(emissions, transitions, start, end, k=4)


@mistake("check_crf_viterbi", "leave the inputs as they are", kind="inplace")
def viterbi_crf_in_place(emissions, transitions, start, end):
    emissions[:, 0] += start
    emissions[:, -1] += end
    zero = torch.zeros_like(start)
    return crf.crf_viterbi(emissions, transitions, zero, zero)


@mistake("check_crf_viterbi", "keep argmax's int64", kind="dtype")
def viterbi_crf_int32(emissions, transitions, start, end):
    return crf.crf_viterbi(emissions, transitions, start, end).int()


def _score(emissions, tags, transitions, start, end):
    return crf.crf_score(emissions, tags, transitions, start, end)


@mistake("check_crf_nll", "not score - log Z")
def nll_sign(emissions, tags, transitions, start, end):
    return -crf.crf_nll(emissions, tags, transitions, start, end)


@mistake("check_crf_nll", "do not sum over it")
def nll_sum(emissions, tags, transitions, start, end):
    return (crf.crf_log_partition(emissions, transitions, start, end) - _score(emissions, tags, transitions, start, end)).sum()


@mistake("check_crf_nll", "the best path's score (max) is not it")
def nll_viterbi_partition(emissions, tags, transitions, start, end):
    log_z = _forward(emissions, transitions, start, end, reduce=_max)
    return (log_z - _score(emissions, tags, transitions, start, end)).mean()


@mistake("check_crf_nll", "ends with end[tags[:, -1]]")
def nll_score_without_end(emissions, tags, transitions, start, end):
    log_z = crf.crf_log_partition(emissions, transitions, start, end)
    return (log_z - _score(emissions, tags, transitions, start, torch.zeros_like(end))).mean()


@mistake("check_crf_nll", "transitions[tags[:, t-1], tags[:, t]]")
def nll_score_transposed(emissions, tags, transitions, start, end):
    log_z = crf.crf_log_partition(emissions, transitions, start, end)
    return (log_z - _score(emissions, tags, transitions.T, start, end)).mean()


@mistake("check_crf_nll", "no gradient with respect to the emissions")
def nll_detached(emissions, tags, transitions, start, end):
    return torch.tensor(crf.crf_nll(emissions, tags, transitions, start, end).item(), dtype=emissions.dtype)


@mistake("check_crf_nll", "keep log Z in the graph")
def nll_log_z_detached(emissions, tags, transitions, start, end):
    log_z = crf.crf_log_partition(emissions, transitions, start, end).detach()
    return (log_z - _score(emissions, tags, transitions, start, end)).mean()


@mistake("check_crf_nll", "do not assume the four tags", kind="overfit")
def nll_one_hot_four(emissions, tags, transitions, start, end):
    one_hot = torch.nn.functional.one_hot(tags, 4).to(emissions.dtype)  # (B, T, 4): B, M, E, S
    score = (emissions * one_hot).sum((1, 2)) + transitions[tags[:, :-1], tags[:, 1:]].sum(1)
    score = score + start[tags[:, 0]] + end[tags[:, -1]]
    return (crf.crf_log_partition(emissions, transitions, start, end) - score).mean()


@mistake("check_crf_nll", "use torch.logsumexp", kind="overfit")
def nll_naive_exp(emissions, tags, transitions, start, end):
    return (partition_naive_exp(emissions, transitions, start, end) - _score(emissions, tags, transitions, start, end)).mean()


@mistake("check_crf_nll", "leave the inputs as they are", kind="inplace")
def nll_normalises_in_place(emissions, tags, transitions, start, end):
    emissions -= emissions.amax(-1, keepdim=True)  # "for stability": the loss does not change, the input does
    return crf.crf_nll(emissions, tags, transitions, start, end)


@mistake("check_crf_nll", "return the dtype the input has", kind="dtype")
def nll_float32(emissions, tags, transitions, start, end):
    return crf.crf_nll(emissions.float(), tags, transitions.float(), start.float(), end.float())


@mistake("check_char_windows", "the first column is the one before")
def windows_reversed(ids, width, pad_id):
    return crf.char_windows(ids, width, pad_id).flip(-1)


@mistake("check_char_windows", "the middle column (k = width) is the character itself")
def windows_shifted(ids, width, pad_id):
    return crf.char_windows(torch.cat([ids[1:], ids.new_full((1,), pad_id)]), width, pad_id)


@mistake("check_char_windows", "do not wrap around")
def windows_roll(ids, width, pad_id):
    return torch.stack([ids.roll(width - k) for k in range(2 * width + 1)], dim=1)


@mistake("check_char_windows", "use the width argument", kind="overfit")
def windows_width_two(ids, width, pad_id):
    return crf.char_windows(ids, 2, pad_id)


@mistake("check_char_windows", "not 0", kind="overfit")
def windows_pad_zero(ids, width, pad_id):
    return crf.char_windows(ids, width, 0)


@mistake("check_char_windows", "leave the inputs as they are", kind="inplace")
def windows_unsqueeze_in_place(ids, width, pad_id):
    ids.unsqueeze_(0)  # (1, T): the shape F.pad likes
    return torch.nn.functional.pad(ids, (width, width), value=pad_id)[0].unfold(0, 2 * width + 1, 1)


@mistake("check_char_windows", "int64 whatever ids' dtype", kind="overfit")
def windows_in_ids_dtype(ids, width, pad_id):
    padded = torch.full((len(ids) + 2 * width,), pad_id, dtype=ids.dtype)
    padded[width : width + len(ids)] = ids
    return padded.unfold(0, 2 * width + 1, 1)


@mistake("check_char_windows", "keep them int64", kind="dtype")
def windows_float(ids, width, pad_id):
    padded = torch.full((len(ids) + 2 * width,), float(pad_id))
    padded[width : width + len(ids)] = ids
    return padded.unfold(0, 2 * width + 1, 1)
