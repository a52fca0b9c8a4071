"""Checks for notebook 03_tokenizers."""
from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Mapping
from functools import lru_cache

from llmlab.data import pydoc_text
from llmlab.grading.core import INPLACE_HINT, Case, Check, Draw, exercise, same, same_counts
from llmlab.tokenization import bpe, wordpiece as wp
from llmlab.tokenization.smollm2 import SMOLLM2_PATTERN, SMOLLM2_SYSTEM_PROMPT, chat_template, load_smollm2_tokenizer


@lru_cache(maxsize=1)
def _smollm2() -> bpe.ByteBPE:
    return load_smollm2_tokenizer()


@lru_cache(maxsize=1)
def _minilm_vocab() -> dict[str, int]:
    from llmlab.models import minilm_dir

    return wp.load_vocab(minilm_dir() / "vocab.txt")


def _pieces(n: int = 1500) -> list[str]:
    """Distinct pre-tokens of some English and Chinese text, in order of appearance."""
    text = pydoc_text("val")[:6000] + "大语言模型的推理要又快又小。分词器把句子切成词元。🙂 naïve café 2024年"
    return list(dict.fromkeys(bpe.pretokenize(text, SMOLLM2_PATTERN)))[:n]


def _word(d: Draw, symbols: list[int], lo: int, hi: int) -> list[int]:
    return [d.choice(symbols) for _ in range(d.int(lo, hi))]


# ------------------------------------------------------------------------------------------ BPE


@exercise("03.bytes_to_unicode", reference=bpe.bytes_to_unicode)
def check_bytes_to_unicode(c: Check) -> None:
    out = c.call()
    want = bpe.bytes_to_unicode()
    c.expect(isinstance(out, Mapping) and sorted(out) == list(range(256)),
             "the result should map each of the 256 byte values 0..255", "build a dict {byte: character}")
    c.expect(all(isinstance(v, str) and len(v) == 1 for v in out.values()), "each byte should map to one character",
             "map each byte to a str of length 1: chr(b) or chr(256 + n)")
    c.expect(len(set(out.values())) == 256, "two bytes map to the same character",
             "each byte needs its own character, or decoding is ambiguous")
    c.expect(out[32] != " " and out[10] != "\n", f"space maps to {out[32]!r} and newline to {out[10]!r}",
             "bytes that print as whitespace or not at all get stand-ins chr(256 + n), n counting them in byte order")
    c.expect({b for b in range(256) if out[b] == chr(b)} == {b for b in range(256) if want[b] == chr(b)},
             "the set of bytes that map to themselves is wrong",
             "printable bytes are '!'..'~', '¡'..'¬' and '®'..'ÿ'; all others get stand-ins")
    for b in range(256):
        c.expect(out[b] == want[b], f"byte {b} maps to {out[b]!r}, expected {want[b]!r}",
                 "the n-th non-printable byte (in increasing order) maps to chr(256 + n)")


_TABLE_HINT = "symbols are any ints (merges get ids 256, 257, ...): count in a dict or Counter, not a 256×256 table"


def _pair_counts_cases(d: Draw) -> list[Case]:
    merged = d.sample(range(256, 50_000), 5) + [32, d.int(97, 122)]
    words = [_word(d, merged, 0, 8) for _ in range(d.int(6, 12))]
    a, w = d.int(0, 255), _word(d, merged, 2, 6)
    runs = [[a] * n for n in range(1, d.int(5, 8))]
    return [Case("runs of one symbol", runs, [d.int(1, 9) for _ in runs],
                 hint="count overlapping occurrences too: [a, a, a] holds (a, a) twice"),
            Case("merged symbols with ids above 255", words, [d.int(1, 10**6) for _ in words], hint=_TABLE_HINT),
            Case("the same word listed twice", [w, [a, a], w], [d.int(1, 9) for _ in range(3)])]


@exercise("03.pair_counts", reference=bpe.pair_counts, cases=_pair_counts_cases, compare=same_counts,
          error_hints={"out of range": _TABLE_HINT, "out of bounds": _TABLE_HINT})
def check_pair_counts(c: Check) -> None:
    words, freqs = [[1, 2, 1, 2], [2, 1]], [3, 5]
    out = c.counts(c.call(words, freqs), "pair_counts([[1, 2, 1, 2], [2, 1]], [3, 5])")
    want = bpe.pair_counts(words, freqs)
    stream = [t for w, f in zip(words, freqs) for _ in range(f) for t in w]  # the corpus as one sequence
    what = f"you counted {dict(out)}, expected {dict(want)}"
    c.diagnose(out, {
        "multiply each pair by its word's frequency": bpe.pair_counts(words, [1, 1]),
        "pairs never cross word boundaries: count inside each word": Counter(zip(stream, stream[1:])),
        "count every occurrence: (1, 2) appears twice in [1, 2, 1, 2]":
            sum((Counter(dict.fromkeys(zip(w, w[1:]), f)) for w, f in zip(words, freqs)), Counter()),
    }, what, correct=want)
    c.expect(out == want, what, "count(x, y) = sum over words of freq × occurrences of (x, y) in the word")
    c.expect(not c.counts(c.call([[7], []], [4, 2]), "pair_counts([[7], []], [4, 2])"),
             "a word of one symbol (or none) has no pair", "zip(word, word[1:]) is empty for such words")


def _merge_cases(d: Draw) -> list[Case]:
    a, b, x = d.int(10, 99), d.int(10, 99), d.int(256, 50_000)
    new = d.int(50_000, 60_000)
    parts = [[a, b]] * 3 + [[100 * d.int(1, 9) + a, b], [a, 10 * b + d.int(0, 9)], [x], [b, a]]
    return [Case("ids with several digits", [i for p in d.sample(parts, len(parts)) for i in p], (a, b), new,
                 hint="compare whole ids, (ids[i], ids[i + 1]) == pair, not the digits of a string"),
            Case("runs of a repeated symbol", [x] * d.int(5, 9) + [a] + [x] * d.int(2, 6), (x, x), new),
            Case("the pair at the very end", _word(d, [a, x], 3, 8) + [b, x, b], (x, b), new),
            Case("a pair that does not occur", [a, x, b, a], (x, a), new)]


@exercise("03.merge_pair", reference=bpe.merge_pair, cases=_merge_cases)
def check_merge_pair(c: Check) -> None:
    cases = [([1, 2, 3, 1, 2], (1, 2), 9), ([1, 1, 1], (1, 1), 9), ([1, 1, 1, 1], (1, 1), 9), ([3, 1, 1, 2], (1, 2), 9),
             ([], (1, 2), 9), ([5], (5, 5), 9), ([4, 5, 6], (6, 4), 9)]
    for ids, pair, new_id in cases:
        out = c.call(ids, pair, new_id)
        want = bpe.merge_pair(ids, pair, new_id)
        c.expect(isinstance(out, list), f"merge_pair({ids}, {pair}, {new_id}) returned {type(out).__name__}", "return a new list")
        what = f"merge_pair({ids}, {pair}, {new_id}) gave {out}, expected {want}"
        if ids == [1, 1, 1]:
            c.diagnose(out, {"scan left to right: the first two symbols merge, the third stays": [1, 9],
                             "a merged pair consumes both symbols: after a merge, jump past it (i += 2)": [9, 9]}, what)
        if ids == [1, 2, 3, 1, 2]:
            c.diagnose(out, {"merge every occurrence of the pair, not only the first": [9, 3, 1, 2]}, what)
        c.expect(out == want, what,
                 "walk i from left to right: if (ids[i], ids[i+1]) == pair, emit new_id and skip 2, else emit ids[i]")


def _change_cases(d: Draw) -> list[Case]:
    a, b, s = *d.sample(range(256, 50_000), 2), d.int(0, 255)
    new = d.int(50_000, 60_000)
    partial = [s] + [a] * d.int(3, 5) + [b] + [s]
    word = _word(d, [a, b, s], 8, 16) + [a, b]
    plain = _word(d, [a, s], 1, 6)
    return [Case("a pair that survives the merge in part", partial, bpe.merge_pair(partial, (a, b), new), d.int(2, 99),
                 hint="subtract freq for every pair of old and add freq for every pair of new, pairs in both included"),
            Case("a random word, ids above 255", word, bpe.merge_pair(word, (a, b), new), d.int(1, 10**6)),
            Case("a word the merge leaves as it is", plain, list(plain), d.int(1, 99))]


@exercise("03.pair_count_change", reference=bpe.pair_count_change, cases=_change_cases, compare=same_counts)
def check_pair_count_change(c: Check) -> None:
    old, new, freq = [1, 2, 3, 1, 2], [9, 3, 9], 4
    out = c.counts(c.call(old, new, freq), "pair_count_change([1, 2, 3, 1, 2], [9, 3, 9], 4)")
    want = Counter({k: v for k, v in bpe.pair_count_change(old, new, freq).items() if v})
    what = f"you returned {dict(out)}, expected {dict(want)}"
    c.diagnose(out, {
        "the old pairs disappear: subtract freq for each of them too": bpe.pair_counts([new], [freq]),
        "each occurrence counts freq times (the word occurs freq times in the corpus)":
            Counter({k: v for k, v in bpe.pair_count_change(old, new, 1).items() if v}),
        "the old pairs lose counts and the new ones gain them, not the other way round": Counter({k: -v for k, v in want.items()}),
    }, what)
    c.expect(out == want, what, "subtract freq for every pair of old, add freq for every pair of new")


def _merge_table(d: Draw) -> tuple[list[int], dict, dict]:
    """A small consistent merge table (each merge joins symbols that exist by then), ranks with gaps, new ids in no order."""
    base = d.sample(range(300), 5)
    pool, ranks, merged = list(base), {}, {}
    for new_id in d.sample(range(300, 49_000), 14):
        pair = next(p for p in iter(lambda: (d.choice(pool), d.choice(pool)), None) if p not in ranks)
        ranks[pair], merged[pair] = 3 * len(ranks) + d.int(0, 2), new_id
        pool.append(new_id)
    return base, ranks, merged


def _apply_cases(d: Draw) -> list[Case]:
    base, ranks, merged = _merge_table(d)
    hint = "use the ranks and merged tables you are given (here not SmolLM2's): merge into merged[pair]"
    a, b, z = base[:3]
    x, y = d.sample(range(49_000, 60_000), 2)  # (a, b) -> x is learned after (x, z) -> y: rank order is not creation order
    return [Case("another merge table", _word(d, base, 6, 16), ranks, merged, hint=hint) for _ in range(4)] + \
        [Case("an empty word", [], ranks, merged), Case("a single symbol", [d.choice(base)], ranks, merged),
         Case("a merge that makes a pair of lower rank", [z, a, b, z, a, b], {(a, b): 1, (x, z): 0}, {(a, b): x, (x, z): y},
              hint="do not replay the table once in rank order: repeat, each time merging the lowest-rank pair "
                   "present now (a merge can create a pair of lower rank)")]


@exercise("03.apply_merges", reference=bpe.apply_merges, cases=_apply_cases)
def check_apply_merges(c: Check) -> None:
    tok = _smollm2()
    for piece in _pieces():
        ids = [tok.byte_ids[b] for b in piece.encode()]
        want = bpe.apply_merges(ids, tok.ranks, tok.merged)
        out = c.call(ids, tok.ranks, tok.merged, copy_args=False)
        c.expect(ids == [tok.byte_ids[b] for b in piece.encode()], "your function changed its first argument in place",
                 INPLACE_HINT)
        what = f"{piece!r} (byte ids {ids}) gave {out}, expected {want}"
        if out != want:
            c.expect(isinstance(out, list), what, "return the list of ids")
            c.diagnose(out, {
                "merge the pair with the lowest rank first, wherever it is in the word, not the leftmost mergeable pair":
                    _leftmost_first(ids, tok.ranks, tok.merged),
                "rank 0 is the first merge learned: take the lowest rank, not the highest":
                    _highest_rank_first(ids, tok.ranks, tok.merged)}, what)
            c.expect(len(out) <= len(want), what, "keep merging until no adjacent pair is in ranks (one pass is not enough)")
        c.expect(out == want, what, "repeat: among adjacent pairs found in ranks, merge the lowest-rank one into merged[pair]")


def _merge_in_order(ids, ranks, merged, choose) -> list[int]:
    """Merge while some adjacent pair is in ranks, taking the pair ``choose(known pairs)`` (a wrong order)."""
    while known := [p for p in zip(ids, ids[1:]) if p in ranks]:
        ids = bpe.merge_pair(ids, pair := choose(known), merged[pair])
    return list(ids)


def _leftmost_first(ids, ranks, merged):
    return _merge_in_order(ids, ranks, merged, lambda known: known[0])


def _highest_rank_first(ids, ranks, merged):
    return _merge_in_order(ids, ranks, merged, lambda known: max(known, key=ranks.get))


def _decode_reference(ids, vocab) -> str:
    return b"".join(vocab[i] for i in ids).decode("utf-8", errors="replace")


def _decode_cases(d: Draw) -> list[Case]:
    data = "你好，naïve café 🙂 大模型".encode()
    cuts = sorted({1, *d.sample(range(2, len(data)), len(data) // 2)})  # pieces of 1 to 3 bytes, most cut inside a character
    chunks = [data[i:j] for i, j in zip([0, *cuts], [*cuts, len(data)])] + [b"\xff", b" ok"]
    ids = d.sample(range(1000, 49_000), len(chunks) + 5)  # ids that SmolLM2 has too, for other bytes
    vocab = dict(zip(ids, chunks + [b"x", b"\xe4\xbd", b"the", b" ", b"\n"]))
    text_ids = ids[:len(chunks) - 2]
    return [Case("another vocabulary {id: bytes}", text_ids, vocab, hint="use the vocab you are given: vocab[i] is the bytes of id i"),
            Case("ids that start inside a character", text_ids[1:], vocab),
            Case("bytes that are not UTF-8", [ids[-7], ids[-6], ids[-4]], vocab), Case("no ids", [], vocab)]


@exercise("03.decode", reference=_decode_reference, cases=_decode_cases)
def check_decode(c: Check) -> None:
    tok = _smollm2()
    hints = {"can't decode": "a token list may stop inside a character: decode with errors='replace'"}
    for text in ["Hello world", "你好，世界！", "naïve café 🙂", "def f(x):\n    return 42\n"]:
        ids = tok.encode(text)
        out = c.call(ids, tok.vocab, error_hints=hints, copy_args=False)
        c.expect(isinstance(out, str), f"you returned {type(out).__name__}, expected str", "decode the joined bytes")
        c.diagnose(out, {"join the bytes of all tokens first and decode once: one character can be split across tokens":
                         "".join(tok.vocab[i].decode("utf-8", "replace") for i in ids)}, f"{text!r} came back as {out!r}", correct=text)
        c.expect(out == text, f"{text!r} came back as {out!r}", "b''.join(vocab[i] for i in ids).decode('utf-8', errors='replace')")
    split = next(ids for ids in (tok.encode(ch) for ch in "龘鬱饕餮𪚥") if len(ids) > 1)
    out = c.call(split[:-1], tok.vocab, error_hints=hints, copy_args=False)
    want = tok.decode(split[:-1])
    c.expect(out == want, f"ids that stop inside a character gave {out!r}, expected {want!r}",
             "use errors='replace': incomplete UTF-8 becomes U+FFFD")


def _chat_cases(d: Draw) -> list[Case]:
    said = ["Bonjour !", "你好！", "What is 2 + 2?", "Four.", "Thanks", "Tell me more.", "好的。"]
    turn = lambda role: {"role": role, "content": d.choice(said)}  # noqa: E731
    return [Case("a system message that is not the first", [turn("user"), turn("system"), turn("user")],
                 hint="the default system prompt comes when the first message is not a system message, whatever comes later"),
            Case("two user messages in a row, then a tool", [turn("user"), turn("user"), turn("tool")], add_generation_prompt=False),
            Case("contents with spaces and newlines at the ends",
                 [turn("system"), {"role": "user", "content": f"  {d.choice(said)}\n\n"}], add_generation_prompt=True,
                 hint="copy each content as it is, spaces and newlines included"),
            Case("only a system message", [turn("system")], add_generation_prompt=d.choice([True, False])),
            Case("no messages at all", [], add_generation_prompt=True,
                 hint="an empty conversation is allowed: there is no messages[0], so check `if messages` before "
                      "looking at its role (the result is only the generation prompt)")]


@exercise("03.chat_format", reference=chat_template, cases=_chat_cases)
def check_chat_format(c: Check) -> None:
    conversations = [
        [{"role": "user", "content": "What is the capital of France?"}],
        [{"role": "system", "content": "你是一个乐于助人的助手。"}, {"role": "user", "content": "你好！"}],
        [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello! How can I help?"},
         {"role": "user", "content": "Tell me a joke."}],
    ]
    for messages in conversations:
        for gen in (True, False):
            out = c.call(messages, add_generation_prompt=gen)
            want = chat_template(messages, add_generation_prompt=gen)
            what = f"for {[m['role'] for m in messages]} (add_generation_prompt={gen}) you wrote {out!r}"
            if out != want and isinstance(out, str):
                c.expect(SMOLLM2_SYSTEM_PROMPT in out or messages[0]["role"] == "system", what,
                         "when the first message is not a system message, the template first adds the default "
                         "system prompt (SMOLLM2_SYSTEM_PROMPT)")
                c.expect(out.endswith("<|im_start|>assistant\n") == gen, what,
                         "with add_generation_prompt, end with '<|im_start|>assistant\\n': the model writes its answer after it"
                         if gen else "add the assistant header only when add_generation_prompt is True")
            c.expect(out == want, what, "each message is '<|im_start|>' + role + '\\n' + content + '<|im_end|>\\n'")


# ------------------------------------------------------------------------------------ WordPiece


def _accents_cases(d: Draw) -> list[Case]:
    mix = lambda words: " ".join(d.sample(words, len(words)))  # noqa: E731
    return [Case("Vietnamese, Greek and Cyrillic", mix(["Tiếng", "Việt", "Ελληνικά", "ἄνθρωπος", "йогурт", "ёлка"])),
            Case("Arabic and Hebrew vowel marks, Thai", mix(["مُحَمَّد", "שָׁלוֹם", "ภาษาไทย", "กั้น"]),
                 hint="drop every character of category 'Mn' (Arabic, Hebrew and Thai marks too), "
                      "not only the combining accents U+0300–U+036F"),
            Case("Korean Hangul, which NFD splits into jamo", mix(["한국어", "문장", "café"]),
                 hint="keep the NFD text as it is once the marks are gone: do not recompose it (NFC)"),
            Case("Devanagari and Tamil, with spacing marks", mix(["हिन्दी", "नमस्कारः", "तमिऴ", "தமிழ்", "கொ"]),
                 hint="drop only category 'Mn': spacing marks ('Mc', such as the vowel signs of Devanagari ि ी and ः) stay"),
            Case("letters without a decomposition", mix(["ø", "ß", "æ", "ł", "đ", "ħ", "ﬁ"])),
            Case("text already decomposed", unicodedata.normalize("NFD", mix(["résumé", "Ångström", "naïve"])))]


@exercise("03.strip_accents", reference=wp.strip_accents, cases=_accents_cases)
def check_strip_accents(c: Check) -> None:
    for text in ["Café naïve Ångström résumé", "Crème brûlée", "中文不变，汉字没有重音。", "ñandú São Paulo", "plain"]:
        out = c.call(text)
        want = wp.strip_accents(text)
        what = f"{text!r} gave {out!r}, expected {want!r}"
        c.diagnose(out, {"é is one code point until you decompose it: unicodedata.normalize('NFD', text) first": text,
                         "remove only the combining marks (category 'Mn'); other characters, Chinese included, stay":
                             unicodedata.normalize("NFD", text).encode("ascii", "ignore").decode()}, what, correct=want)
        c.expect(out == want, what, "decompose with NFD, then drop characters whose unicodedata.category is 'Mn'")


_CJK_RANGES = [(0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F), (0x2B740, 0x2B81F),
               (0x2B920, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)]


def _cjk_cases(d: Draw) -> list[Case]:
    mix = lambda chars: "".join(ch + d.choice(["", "", "a", " ", "，"]) for ch in d.sample(chars, len(chars)))  # noqa: E731
    ends = [chr(cp) for r in _CJK_RANGES for cp in r]
    outside = [chr(cp) for lo, hi in _CJK_RANGES for cp in (lo - 1, hi + 1)
               if not any(a <= cp <= b for a, b in _CJK_RANGES)] + list("，。「」\u3000ぁア가")
    return [Case("Extensions C, D and E", mix([chr(d.int(lo + 1, hi - 1)) for lo, hi in _CJK_RANGES[3:6] for _ in range(3)]),
                 hint="BERT's CJK ranges include Extensions B to E (U+20000–U+2CEAF, with the gaps listed)"),
            Case("the first and last code point of every range", mix(ends),
                 hint="both ends of a range belong to it: lo <= ord(ch) <= hi"),
            Case("characters just outside the ranges", mix(outside),
                 hint="pad only the ranges listed: Extension E starts at U+2B920 here, as in Hugging Face"),
            Case("spaces already around ideographs", " 我 爱  你们 " * d.int(1, 3))]


@exercise("03.pad_cjk", reference=wp.pad_cjk, cases=_cjk_cases)
def check_pad_cjk(c: Check) -> None:
    texts = ["我爱NLP", "BERT把中文切成单字", "日本語のテキスト", "한국어 문장", "㐀 extension A", "豈 compatibility",
             "𠀀 extension B", "no CJK here"]
    for text in texts:
        out = c.call(text)
        want = wp.pad_cjk(text)
        what = f"{text!r} gave {out!r}, expected {want!r}"
        spacing_only = isinstance(out, str) and out != want and out.replace(" ", "") == want.replace(" ", "")
        c.expect(not (spacing_only and any(ch in text and f" {ch} " not in out for ch in "㐀豈𠀀")), what,
                 "BERT's CJK ranges go beyond U+4E00–U+9FFF: Extensions A (U+3400–U+4DBF), B–E, and the "
                 "compatibility ideographs (U+F900–U+FAFF, U+2F800–U+2FA1F)")
        c.expect(not (spacing_only and out.count(" ") > want.count(" ") and any(ch in text for ch in "のテキ한국")), what,
                 "only ideographs are padded: Japanese kana and Korean Hangul stay inside words")
        c.expect(out == want, what, "put one space before and one after every CJK ideograph (do not merge or strip spaces)")


def _wordpiece_cases(d: Draw) -> list[Case]:
    letters = d.sample("abcdefghijklmnopqrstuvwxyz", 6)
    a, b, x, y, missing = letters[:5]
    vocab = {p: i for i, p in enumerate([a, b, x, y, *("##" + ch for ch in (a, b, x, y)), a + b, "##" + x + y + a, "[UNK]"])}
    word = lambda n: "".join(d.choice([a, b, x, y]) for _ in range(n))  # noqa: E731
    return [Case("a word of exactly max_chars (100) characters", word(100), vocab,
                 hint="only a word longer than max_chars is [UNK] at once: len(word) > max_chars, not >="),
            Case("another vocabulary", word(d.int(5, 12)), vocab),
            Case("other unk and max_chars", word(7), vocab, unk="<unk>", max_chars=6,
                 hint="use the unk and max_chars arguments, not fixed values"),
            Case("a word of exactly max_chars = 5", word(5), vocab, unk="<unk>", max_chars=5),
            Case("a character the vocabulary lacks", word(d.int(1, 6)) + missing + word(2), vocab, unk="<unk>"),
            Case("a word that only a shorter first piece would split", a + b + x + y, {a + b: 0, a: 1, "##" + b + x + y: 2},
                 hint="greedy never backtracks: when the rest after the longest first piece matches nothing, the word is [UNK]")]


@exercise("03.wordpiece", reference=wp.wordpiece, cases=_wordpiece_cases)
def check_wordpiece(c: Check) -> None:
    vocab = _minilm_vocab()
    for word in ["unaffable", "tokenization", "playing", "transformers", "smollm", "quantization", "xyz",
                 "🙂abc", "a" * 101, "the", "##"]:
        out = c.call(word, vocab, copy_args=False)
        want = wp.wordpiece(word, vocab)
        what = f"{word[:20]!r} gave {out}, expected {want}"
        if out != want and isinstance(out, list):
            if out and want != ["[UNK]"] and len(out) > len(want) and "".join(p.removeprefix("##") for p in out) == word:
                c.fail(what, "take the longest piece in the vocabulary first, shrinking from the right")
            if len(out) > 1 and not any(p.startswith("##") for p in out[1:]) and any(p.startswith("##") for p in want):
                c.fail(what, "pieces after the first carry the '##' prefix: look up '##' + rest")
            c.expect(not (want == ["[UNK]"] and len(word) > 100), what, "a word longer than max_chars (100) is [UNK] at once")
            c.expect(not (want == ["[UNK]"] and "[UNK]" in out), what,
                     "if any part of the word matches nothing, the whole word is a single [UNK]")
        c.expect(out == want, what,
                 "greedy longest-match-first: from the start, take the longest vocabulary piece, then continue with '##' pieces")
