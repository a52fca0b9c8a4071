"""Checks for notebook 03_tokenizers."""
from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Mapping
from functools import lru_cache

from llmlab.data import pydoc_text
from llmlab.grading.core import Check
from llmlab.tokenization import bpe, wordpiece as wp


@lru_cache(maxsize=1)
def _smollm2() -> bpe.ByteBPE:
    return bpe.load_smollm2_tokenizer()


@lru_cache(maxsize=1)
def _minilm_vocab() -> dict[str, int]:
    from llmlab.models import minilm_dir

    return wp.load_vocab(minilm_dir() / "vocab.txt")


def _pieces(n: int = 1500) -> list[str]:
    """Distinct pre-tokens of some English and Chinese text, in order of appearance."""
    text = pydoc_text("val")[:6000] + "大语言模型的推理要又快又小。分词器把句子切成词元。🙂 naïve café 2024年"
    return list(dict.fromkeys(bpe.pretokenize(text, bpe.SMOLLM2_PATTERN)))[:n]


def _counter(c: Check, out, what: str) -> Counter:
    c.expect(isinstance(out, Mapping), f"{what} returned {type(out).__name__}, expected a dict or Counter",
             "collections.Counter is made for counting")
    return Counter({k: v for k, v in out.items() if v})


# ------------------------------------------------------------------------------------------ BPE


def check_bytes_to_unicode(fn) -> None:
    c = Check("03.bytes_to_unicode", fn)
    out = c.call()
    want = bpe.bytes_to_unicode()
    c.expect(isinstance(out, Mapping) and sorted(out) == list(range(256)),
             "the result should map each of the 256 byte values 0..255", "build a dict {byte: character}")
    c.expect(all(isinstance(v, str) and len(v) == 1 for v in out.values()), "each byte should map to one character", "")
    if len(set(out.values())) < 256:
        c.fail("two bytes map to the same character", "each byte needs its own character, or decoding is ambiguous")
    if out[32] == " " or out[10] == "\n":
        c.fail(f"space maps to {out[32]!r} and newline to {out[10]!r}",
               "bytes that print as whitespace or not at all get stand-ins chr(256 + n), n counting them in byte order")
    printable = {b for b in range(256) if want[b] == chr(b)}
    if {b for b in range(256) if out[b] == chr(b)} != printable:
        c.fail("the set of bytes that map to themselves is wrong",
               "printable bytes are '!'..'~', '¡'..'¬' and '®'..'ÿ'; all others get stand-ins")
    for b in range(256):
        c.expect(out[b] == want[b], f"byte {b} maps to {out[b]!r}, expected {want[b]!r}",
                 "the n-th non-printable byte (in increasing order) maps to chr(256 + n)")
    c.done()


def check_pair_counts(fn) -> None:
    c = Check("03.pair_counts", fn)
    words, freqs = [[1, 2, 1, 2], [2, 1]], [3, 5]
    out = _counter(c, c.call(words, freqs), "pair_counts([[1, 2, 1, 2], [2, 1]], [3, 5])")
    want = bpe.pair_counts(words, freqs)
    stream = [t for w, f in zip(words, freqs) for _ in range(f) for t in w]  # the corpus as one sequence
    distinct: Counter = Counter()
    for w, f in zip(words, freqs):
        for p in set(zip(w, w[1:])):
            distinct[p] += f
    mistakes = {
        "multiply each pair by its word's frequency": bpe.pair_counts(words, [1, 1]),
        "pairs never cross word boundaries: count inside each word": Counter(zip(stream, stream[1:])),
        "count every occurrence: (1, 2) appears twice in [1, 2, 1, 2]": distinct,
    }
    for hint, wrong in mistakes.items():
        if out == wrong and out != want:
            c.fail(f"you counted {dict(out)}, expected {dict(want)}", hint)
    c.expect(out == want, f"you counted {dict(out)}, expected {dict(want)}",
             "count(x, y) = sum over words of freq × occurrences of (x, y) in the word")
    pieces = Counter(bpe.pretokenize(pydoc_text("train")[:20000]))
    words = [list(p.encode()) for p in pieces]
    freqs = list(pieces.values())
    c.expect(_counter(c, c.call(words, freqs), "pair_counts on pydoc words") == bpe.pair_counts(words, freqs),
             "on the words of a pydoc slice your counts differ from the reference", "")
    c.expect(not _counter(c, c.call([[7], []], [4, 2]), "one-symbol and empty words"),
             "a word of one symbol (or none) has no pair", "zip(word, word[1:]) is empty for such words")
    c.done()


def check_merge_pair(fn) -> None:
    c = Check("03.merge_pair", fn)
    cases = [([1, 2, 3, 1, 2], (1, 2), 9), ([1, 1, 1], (1, 1), 9), ([1, 1, 1, 1], (1, 1), 9), ([3, 1, 1, 2], (1, 2), 9),
             ([], (1, 2), 9), ([5], (5, 5), 9), ([4, 5, 6], (6, 4), 9)]
    for ids, pair, new_id in cases:
        out = c.call(ids, pair, new_id)
        want = bpe.merge_pair(ids, pair, new_id)
        c.expect(isinstance(out, list), f"merge_pair({ids}, {pair}, {new_id}) returned {type(out).__name__}", "return a new list")
        if out == want:
            c.passed += 1
            continue
        what = f"merge_pair({ids}, {pair}, {new_id}) gave {out}, expected {want}"
        if ids == [1, 1, 1] and out == [1, 9]:
            c.fail(what, "scan left to right: the first two symbols merge, the third stays")
        if ids == [1, 1, 1] and out == [9, 9]:
            c.fail(what, "a merged pair consumes both symbols: after a merge, jump past it (i += 2)")
        if ids == [1, 2, 3, 1, 2] and out == [9, 3, 1, 2]:
            c.fail(what, "merge every occurrence of the pair, not only the first")
        c.fail(what, "walk i from left to right: if (ids[i], ids[i+1]) == pair, emit new_id and skip 2, else emit ids[i]")
    c.done()


def check_pair_count_change(fn) -> None:
    c = Check("03.pair_count_change", fn)
    old, new, freq = [1, 2, 3, 1, 2], [9, 3, 9], 4
    out = _counter(c, c.call(old, new, freq), "pair_count_change([1, 2, 3, 1, 2], [9, 3, 9], 4)")
    want = Counter({k: v for k, v in bpe.pair_count_change(old, new, freq).items() if v})
    mistakes = {
        "the old pairs disappear: subtract freq for each of them too":
            Counter({p: freq * n for p, n in Counter(zip(new, new[1:])).items()}),
        "each occurrence counts freq times (the word occurs freq times in the corpus)":
            Counter({k: v for k, v in bpe.pair_count_change(old, new, 1).items() if v}),
        "the old pairs lose counts and the new ones gain them, not the other way round": Counter({k: -v for k, v in want.items()}),
    }
    for hint, wrong in mistakes.items():
        if out == wrong:
            c.fail(f"you returned {dict(out)}, expected {dict(want)}", hint)
    c.expect(out == want, f"you returned {dict(out)}, expected {dict(want)}",
             "subtract freq for every pair of old, add freq for every pair of new")
    # the property that makes incremental training right: counts + change == recount after the merge
    pieces = Counter(bpe.pretokenize(pydoc_text("train")[:8000]))
    words, freqs = [list(p.encode()) for p in pieces], list(pieces.values())
    counts = bpe.pair_counts(words, freqs)
    pair = counts.most_common(1)[0][0]
    for word, f in zip(words, freqs):
        merged = bpe.merge_pair(word, pair, 256)
        if merged != word:
            counts.update(_counter(c, c.call(word, merged, f), "pair_count_change"))
    recount = bpe.pair_counts([bpe.merge_pair(w, pair, 256) for w in words], freqs)
    c.expect(Counter({k: v for k, v in counts.items() if v}) == recount,
             "counts + your changes differ from a full recount after merging the top pair on pydoc words", "")
    c.done()


def check_apply_merges(fn) -> None:
    c = Check("03.apply_merges", fn)
    tok = _smollm2()
    byte_ids = tok.byte_ids
    pieces = _pieces()
    wrong_first = None
    for piece in pieces:
        ids = [byte_ids[b] for b in piece.encode()]
        out = c.call(ids, tok.ranks, tok.merged, copy_args=False)
        want = bpe.apply_merges(ids, tok.ranks, tok.merged)
        if out != want:
            wrong_first = (piece, ids, out, want)
            break
    if wrong_first is None:
        c.passed += len(pieces)
        c.done()
        return
    piece, ids, out, want = wrong_first
    what = f"{piece!r} (byte ids {ids}) gave {out}, expected {want}"
    if not isinstance(out, list):
        c.fail(what, "return the list of ids")
    leftmost = _leftmost_first(ids, tok.ranks, tok.merged)
    if out == leftmost:
        c.fail(what, "merge the pair with the lowest rank first, wherever it is in the word, not the leftmost mergeable pair")
    if out == _highest_rank_first(ids, tok.ranks, tok.merged):
        c.fail(what, "rank 0 is the first merge learned: take the lowest rank, not the highest")
    if len(out) > len(want):
        c.fail(what, "keep merging until no adjacent pair is in ranks (one pass is not enough)")
    c.fail(what, "repeat: among adjacent pairs found in ranks, merge the lowest-rank one into merged[pair]")


def _leftmost_first(ids, ranks, merged):
    ids = list(ids)
    while True:
        i = next((i for i in range(len(ids) - 1) if (ids[i], ids[i + 1]) in ranks), None)
        if i is None:
            return ids
        ids = bpe.merge_pair(ids, (ids[i], ids[i + 1]), merged[(ids[i], ids[i + 1])])


def _highest_rank_first(ids, ranks, merged):
    ids = list(ids)
    while len(ids) > 1:
        known = [p for p in zip(ids, ids[1:]) if p in ranks]
        if not known:
            break
        pair = max(known, key=ranks.get)
        ids = bpe.merge_pair(ids, pair, merged[pair])
    return ids


def check_decode(fn) -> None:
    c = Check("03.decode", fn)
    tok = _smollm2()
    hints = {"can't decode": "a token list may stop inside a character: decode with errors='replace'"}
    for text in ["Hello world", "你好，世界！", "naïve café 🙂", "def f(x):\n    return 42\n"]:
        ids = tok.encode(text)
        out = c.call(ids, tok.vocab, error_hints=hints, copy_args=False)
        c.expect(isinstance(out, str), f"you returned {type(out).__name__}, expected str", "decode the joined bytes")
        if out != text and out == "".join(tok.vocab[i].decode("utf-8", "replace") for i in ids):
            c.fail(f"{text!r} came back as {out!r}",
                   "join the bytes of all tokens first and decode once: one character can be split across tokens")
        c.expect(out == text, f"{text!r} came back as {out!r}", "b''.join(vocab[i] for i in ids).decode('utf-8', errors='replace')")
    split = next(ids for ids in (tok.encode(ch) for ch in "龘鬱饕餮𪚥") if len(ids) > 1)
    out = c.call(split[:-1], tok.vocab, error_hints=hints, copy_args=False)
    want = tok.decode(split[:-1])
    c.expect(out == want, f"ids that stop inside a character gave {out!r}, expected {want!r}",
             "use errors='replace': incomplete UTF-8 becomes U+FFFD")
    c.done()


def check_chat_format(fn) -> None:
    c = Check("03.chat_format", fn)
    conversations = [
        [{"role": "user", "content": "What is the capital of France?"}],
        [{"role": "system", "content": "你是一个乐于助人的助手。"}, {"role": "user", "content": "你好！"}],
        [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello! How can I help?"},
         {"role": "user", "content": "Tell me a joke."}],
    ]
    for messages in conversations:
        for gen in (True, False):
            out = c.call(messages, add_generation_prompt=gen)
            want = bpe.chat_template(messages, add_generation_prompt=gen)
            if out == want:
                c.passed += 1
                continue
            what = f"for {[m['role'] for m in messages]} (add_generation_prompt={gen}) you wrote {out!r}"
            if isinstance(out, str) and bpe.SMOLLM2_SYSTEM_PROMPT not in out and messages[0]["role"] != "system":
                c.fail(what, "when the first message is not a system message, the template first adds the default "
                             "system prompt (bpe.SMOLLM2_SYSTEM_PROMPT)")
            if isinstance(out, str) and gen and not out.endswith("<|im_start|>assistant\n"):
                c.fail(what, "with add_generation_prompt, end with '<|im_start|>assistant\\n': the model writes its answer after it")
            if isinstance(out, str) and not gen and out.endswith("<|im_start|>assistant\n"):
                c.fail(what, "add the assistant header only when add_generation_prompt is True")
            c.fail(what, "each message is '<|im_start|>' + role + '\\n' + content + '<|im_end|>\\n'")
    c.done()


# ------------------------------------------------------------------------------------ WordPiece


def check_strip_accents(fn) -> None:
    c = Check("03.strip_accents", fn)
    for text in ["Café naïve Ångström résumé", "Crème brûlée", "中文不变，汉字没有重音。", "ñandú São Paulo", "plain"]:
        out = c.call(text)
        want = wp.strip_accents(text)
        if out == want:
            c.passed += 1
            continue
        what = f"{text!r} gave {out!r}, expected {want!r}"
        if out == text:
            c.fail(what, "é is one code point until you decompose it: unicodedata.normalize('NFD', text) first")
        if out == text.encode("ascii", "ignore").decode() or out == unicodedata.normalize("NFD", text).encode("ascii", "ignore").decode():
            c.fail(what, "remove only the combining marks (category 'Mn'); other characters, Chinese included, stay")
        c.fail(what, "decompose with NFD, then drop characters whose unicodedata.category is 'Mn'")
    c.done()


def check_pad_cjk(fn) -> None:
    c = Check("03.pad_cjk", fn)
    texts = ["我爱NLP", "BERT把中文切成单字", "日本語のテキスト", "한국어 문장", "㐀 extension A", "豈 compatibility",
             "𠀀 extension B", "no CJK here"]
    for text in texts:
        out = c.call(text)
        want = wp.pad_cjk(text)
        if out == want:
            c.passed += 1
            continue
        what = f"{text!r} gave {out!r}, expected {want!r}"
        if any(ch in text for ch in "㐀豈𠀀") and out.strip() != want.strip() and out.replace(" ", "") == text.replace(" ", ""):
            c.fail(what, "BERT's CJK ranges go beyond U+4E00–U+9FFF: Extensions A (U+3400–U+4DBF), B–E, and the "
                         "compatibility ideographs (U+F900–U+FAFF, U+2F800–U+2FA1F)")
        if any(ch in text for ch in "のテキ한국"):
            c.fail(what, "only ideographs are padded: Japanese kana and Korean Hangul stay inside words")
        c.fail(what, "put one space before and one after every CJK ideograph (do not merge or strip spaces)")
    c.done()


def check_wordpiece(fn) -> None:
    c = Check("03.wordpiece", fn)
    vocab = _minilm_vocab()
    words = ["unaffable", "tokenization", "playing", "transformers", "smollm", "quantization", "xyz",
             "🙂abc", "a" * 101, "the", "##"]
    for word in words:
        out = c.call(word, vocab, copy_args=False)
        want = wp.wordpiece(word, vocab)
        if out == want:
            c.passed += 1
            continue
        what = f"{word[:20]!r} gave {out}, expected {want}"
        if isinstance(out, list) and out and want != ["[UNK]"] and len(out) > len(want) and "".join(
                p.removeprefix("##") for p in out) == word:
            c.fail(what, "take the longest piece in the vocabulary first, shrinking from the right")
        if isinstance(out, list) and len(out) > 1 and not any(p.startswith("##") for p in out[1:]) and any(
                p.startswith("##") for p in want):
            c.fail(what, "pieces after the first carry the '##' prefix: look up '##' + rest")
        if want == ["[UNK]"] and len(word) > 100:
            c.fail(what, "a word longer than max_chars (100) is [UNK] at once")
        if want == ["[UNK]"] and isinstance(out, list) and "[UNK]" in out:
            c.fail(what, "if any part of the word matches nothing, the whole word is a single [UNK]")
        c.fail(what, "greedy longest-match-first: from the start, take the longest vocabulary piece, then continue with '##' pieces")
    c.done()
