"""Common mistakes in 03_tokenizers."""
import functools
import unicodedata
from collections import Counter

from llmlab.tokenization import bpe
from llmlab.tokenization.smollm2 import SMOLLM2_SYSTEM_PROMPT, chat_template, load_smollm2_tokenizer
from llmlab.tokenization import wordpiece as wp
from tests.mutants import mistake

_smollm2 = functools.cache(load_smollm2_tokenizer)  # loaded once, as the notebook loads it


def _decode(ids, vocab):
    return b"".join(vocab[i] for i in ids).decode("utf-8", errors="replace")


REFERENCE = {
    "check_bytes_to_unicode": bpe.bytes_to_unicode,
    "check_pair_counts": bpe.pair_counts,
    "check_merge_pair": bpe.merge_pair,
    "check_pair_count_change": bpe.pair_count_change,
    "check_apply_merges": bpe.apply_merges,
    "check_decode": _decode,
    "check_chat_format": chat_template,
    "check_strip_accents": wp.strip_accents,
    "check_pad_cjk": wp.pad_cjk,
    "check_wordpiece": wp.wordpiece,
}


# bytes <-> unicode
@mistake("check_bytes_to_unicode", "stand-ins chr(256 + n)")
def b2u_identity():
    return {b: chr(b) for b in range(256)}


@mistake("check_bytes_to_unicode", "stand-ins chr(256 + n)")
def b2u_space_printable():
    printable = set(range(ord(" "), ord("~") + 1)) | set(range(ord("¡"), ord("¬") + 1)) | set(range(ord("®"), ord("ÿ") + 1))
    out, n = {}, 0
    for b in range(256):
        if b in printable:
            out[b] = chr(b)
        else:
            out[b] = chr(256 + n)
            n += 1
    return out


@mistake("check_bytes_to_unicode", "printable bytes are")
def b2u_ascii_only():
    printable = set(range(ord("!"), ord("~") + 1))
    out, n = {}, 0
    for b in range(256):
        out[b] = chr(b) if b in printable else chr(256 + n)
        n += b not in printable
    return out


@mistake("check_bytes_to_unicode", "each byte needs its own character")
def b2u_collides():
    want = bpe.bytes_to_unicode()
    return {b: (chr(255 + n) if want[b] != chr(b) else chr(b)) for n, b in enumerate(range(256))}


# pair counts
@mistake("check_pair_counts", "frequency")
def counts_unweighted(words, freqs):
    return bpe.pair_counts(words, [1] * len(words))


@mistake("check_pair_counts", "never cross word boundaries")
def counts_across_words(words, freqs):
    stream = [t for w, f in zip(words, freqs) for _ in range(f) for t in w]
    return Counter(zip(stream, stream[1:]))


@mistake("check_pair_counts", "count every occurrence")
def counts_distinct(words, freqs):
    out = Counter()
    for w, f in zip(words, freqs):
        for p in set(zip(w, w[1:])):
            out[p] += f
    return out


# merge_pair
@mistake("check_merge_pair", "every occurrence")
def merge_first_only(ids, pair, new_id):
    for i in range(len(ids) - 1):
        if (ids[i], ids[i + 1]) == pair:
            return list(ids[:i]) + [new_id] + list(ids[i + 2 :])
    return list(ids)


@mistake("check_merge_pair", "consumes both symbols")
def merge_overlapping(ids, pair, new_id):
    out = []
    for i in range(len(ids)):
        if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:
            out.append(new_id)
        elif not (i > 0 and (ids[i - 1], ids[i]) == pair):
            out.append(ids[i])
    return out


@mistake("check_merge_pair", "scan left to right")
def merge_right_to_left(ids, pair, new_id):
    return bpe.merge_pair(list(ids)[::-1], pair[::-1], new_id)[::-1]


# pair_count_change
@mistake("check_pair_count_change", "subtract freq")
def change_no_subtraction(old, new, freq):
    return Counter({p: freq * n for p, n in Counter(zip(new, new[1:])).items()})


@mistake("check_pair_count_change", "counts freq times")
def change_unweighted(old, new, freq):
    return bpe.pair_count_change(old, new, 1)


@mistake("check_pair_count_change", "not the other way round")
def change_reversed(old, new, freq):
    return bpe.pair_count_change(new, old, freq)


# apply_merges
@mistake("check_apply_merges", "not the leftmost mergeable pair")
def apply_leftmost(ids, ranks, merged):
    ids = list(ids)
    while pairs := [p for p in zip(ids, ids[1:]) if p in ranks]:
        ids = bpe.merge_pair(ids, pairs[0], merged[pairs[0]])  # the first known pair from the left
    return ids


@mistake("check_apply_merges", "not the highest")
def apply_highest(ids, ranks, merged):
    ids = list(ids)
    while pairs := {p for p in zip(ids, ids[1:]) if p in ranks}:
        top = max(pairs, key=lambda p: ranks[p])  # the latest merge learned
        ids = bpe.merge_pair(ids, top, merged[top])
    return ids


@mistake("check_apply_merges", "one pass is not enough")
def apply_one_pass(ids, ranks, merged):
    ids = list(ids)
    pairs = [p for p in zip(ids, ids[1:]) if p in ranks]
    if pairs:
        best = min(pairs, key=ranks.get)
        ids = bpe.merge_pair(ids, best, merged[best])
    return ids


# decode
@mistake("check_decode", "decode once")
def decode_per_token(ids, vocab):
    return "".join(vocab[i].decode("utf-8", errors="replace") for i in ids)


@mistake("check_decode", "errors='replace'")
def decode_strict(ids, vocab):
    return b"".join(vocab[i] for i in ids).decode("utf-8")


# chat template
@mistake("check_chat_format", "default system prompt")
def chat_no_default_system(messages, add_generation_prompt=True):
    text = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
    return text + ("<|im_start|>assistant\n" if add_generation_prompt else "")


@mistake("check_chat_format", "the model writes its answer after it")
def chat_no_generation_prompt(messages, add_generation_prompt=True):
    return chat_template(messages, add_generation_prompt=False)


@mistake("check_chat_format", "only when add_generation_prompt is True")
def chat_always_generation_prompt(messages, add_generation_prompt=True):
    return chat_template(messages, add_generation_prompt=True)


# strip accents
@mistake("check_strip_accents", "NFD")
def accents_nfc(text):
    return "".join(ch for ch in unicodedata.normalize("NFC", text) if unicodedata.category(ch) != "Mn")


@mistake("check_strip_accents", "remove only the combining marks")
def accents_ascii_only(text):
    return unicodedata.normalize("NFD", text).encode("ascii", "ignore").decode()


# pad CJK
@mistake("check_pad_cjk", "beyond U+4E00–U+9FFF")
def pad_basic_block_only(text):
    return "".join(f" {ch} " if "\u4e00" <= ch <= "\u9fff" else ch for ch in text)


@mistake("check_pad_cjk", "kana and Korean Hangul")
def pad_all_non_ascii(text):
    return "".join(f" {ch} " if ord(ch) > 0x2E80 and not ch.isspace() else ch for ch in text)


# wordpiece
@mistake("check_wordpiece", "longest piece")
def wp_shortest_first(word, vocab, unk="[UNK]", max_chars=100):
    if len(word) > max_chars:
        return [unk]
    pieces, start = [], 0
    while start < len(word):
        for end in range(start + 1, len(word) + 1):
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            if piece in vocab:
                break
        else:
            return [unk]
        pieces.append(piece)
        start = end
    return pieces


@mistake("check_wordpiece", "'##' prefix")
def wp_no_prefix(word, vocab, unk="[UNK]", max_chars=100):
    if len(word) > max_chars:
        return [unk]
    pieces, start = [], 0
    while start < len(word):
        for end in range(len(word), start, -1):
            if word[start:end] in vocab:
                break
        else:
            return [unk]
        pieces.append(word[start:end])
        start = end
    return pieces


@mistake("check_wordpiece", "the whole word is a single [UNK]")
def wp_partial_unk(word, vocab, unk="[UNK]", max_chars=100):
    if len(word) > max_chars:
        return [unk]
    pieces, start = [], 0
    while start < len(word):
        for end in range(len(word), start, -1):
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            if piece in vocab:
                pieces.append(piece)
                start = end
                break
        else:
            pieces.append(unk)
            start += 1
    return pieces


@mistake("check_wordpiece", "longer than max_chars")
def wp_no_length_limit(word, vocab, unk="[UNK]", max_chars=100):
    return wp.wordpiece(word, vocab, unk, max_chars=10_000)


# ---------------------------------------------------------------- right on the examples, wrong in general

@mistake("check_pair_counts", "not a 256×256 table", kind="overfit")
def counts_byte_table(words, freqs):
    table = [[0] * 256 for _ in range(256)]  # "the vocabulary is the 256 bytes"
    for w, f in zip(words, freqs):
        for a, b in zip(w, w[1:]):
            table[a][b] += f
    return Counter({(a, b): table[a][b] for a in range(256) for b in range(256) if table[a][b]})


@mistake("check_merge_pair", "not the digits of a string", kind="overfit")
def merge_by_string_replace(ids, pair, new_id):
    text = " ".join(map(str, ids)).replace(f"{pair[0]} {pair[1]}", str(new_id))
    return [int(t) for t in text.split()]


@mistake("check_pair_count_change", "pairs in both included", kind="overfit")
def change_only_new_and_gone(old, new, freq):
    before, after = Counter(zip(old, old[1:])), Counter(zip(new, new[1:]))
    delta = Counter({p: -freq * n for p, n in before.items() if p not in after})
    delta.update({p: freq * n for p, n in after.items() if p not in before})
    return delta


@mistake("check_apply_merges", "not SmolLM2's", kind="overfit")
def apply_global_tables(ids, ranks, merged):
    tok = _smollm2()  # the notebook's `smollm2`, not the arguments
    return bpe.apply_merges(ids, tok.ranks, tok.merged)


@mistake("check_decode", "use the vocab you are given", kind="overfit")
def decode_global_tokenizer(ids, vocab):
    return _smollm2().decode(ids)


@mistake("check_chat_format", "whatever comes later", kind="overfit")
def chat_any_system(messages, add_generation_prompt=True):
    text = "" if any(m["role"] == "system" for m in messages) else \
        f"<|im_start|>system\n{SMOLLM2_SYSTEM_PROMPT}<|im_end|>\n"
    text += "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
    return text + ("<|im_start|>assistant\n" if add_generation_prompt else "")


@mistake("check_chat_format", "copy each content as it is", kind="overfit")
def chat_strips_content(messages, add_generation_prompt=True):
    return chat_template([{**m, "content": m["content"].strip()} for m in messages], add_generation_prompt)


@mistake("check_strip_accents", "not only the combining accents", kind="overfit")
def accents_block_only(text):
    return "".join(ch for ch in unicodedata.normalize("NFD", text) if not "\u0300" <= ch <= "\u036f")


@mistake("check_strip_accents", "Thai marks too", kind="overfit")
def accents_combining_class(text):
    return "".join(ch for ch in unicodedata.normalize("NFD", text) if not unicodedata.combining(ch))


@mistake("check_strip_accents", "do not recompose", kind="overfit")
def accents_recomposed(text):
    return unicodedata.normalize("NFC", wp.strip_accents(text))


_CJK = [(0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F), (0x2B740, 0x2B81F),
        (0x2B920, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)]


@mistake("check_pad_cjk", "lo <= ord(ch) <= hi", kind="overfit")
def pad_exclusive_end(text):
    return "".join(f" {ch} " if any(lo <= ord(ch) < hi for lo, hi in _CJK) else ch for ch in text)


@mistake("check_pad_cjk", "Extension E starts at U+2B920", kind="overfit")
def pad_unicode_extension_e(text):
    ranges = [(lo, hi) for lo, hi in _CJK if lo != 0x2B920] + [(0x2B820, 0x2CEAF)]
    return "".join(f" {ch} " if any(lo <= ord(ch) <= hi for lo, hi in ranges) else ch for ch in text)


@mistake("check_pad_cjk", "Extensions B to E", kind="overfit")
def pad_without_c_to_e(text):
    ranges = [_CJK[i] for i in (0, 1, 2, 6, 7)]
    return "".join(f" {ch} " if any(lo <= ord(ch) <= hi for lo, hi in ranges) else ch for ch in text)


@mistake("check_wordpiece", "not >=", kind="overfit")
def wp_at_most_99(word, vocab, unk="[UNK]", max_chars=100):
    return [unk] if len(word) >= max_chars else wp.wordpiece(word, vocab, unk, max_chars)


@mistake("check_wordpiece", "use the unk and max_chars arguments", kind="overfit")
def wp_fixed_unk_and_limit(word, vocab, unk="[UNK]", max_chars=100):
    return wp.wordpiece(word, vocab, "[UNK]", 100)


@mistake("check_wordpiece", "greedy never backtracks", kind="overfit")
def wp_backtracking(word, vocab, unk="[UNK]", max_chars=100):
    def split(start):
        if start == len(word):
            return []
        for end in range(len(word), start, -1):
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            if piece in vocab and (rest := split(end)) is not None:
                return [piece, *rest]
        return None

    pieces = split(0) if len(word) <= max_chars else None
    return [unk] if pieces is None else pieces


# ---------------------------------------------------------------- changing the caller's lists

@mistake("check_pair_counts", "leave the inputs as they are", kind="inplace")
def counts_popping(words, freqs):
    counts = Counter()
    while words:
        word, freq = words.pop(), freqs.pop()
        for pair in zip(word, word[1:]):
            counts[pair] += freq
    return counts


@mistake("check_merge_pair", "leave the inputs as they are", kind="inplace")
def merge_in_place(ids, pair, new_id):
    i = 0
    while i < len(ids) - 1:
        if (ids[i], ids[i + 1]) == pair:
            ids[i:i + 2] = [new_id]
        i += 1
    return ids


@mistake("check_apply_merges", "leave the inputs as they are", kind="inplace")
def apply_into_ids(ids, ranks, merged):
    while len(ids) > 1:
        pair = min(zip(ids, ids[1:]), key=lambda p: ranks.get(p, float("inf")))
        if pair not in ranks:
            break
        ids[:] = bpe.merge_pair(ids, pair, merged[pair])
    return ids


@mistake("check_chat_format", "leave the inputs as they are", kind="inplace")
def chat_inserts_system(messages, add_generation_prompt=True):
    if messages and messages[0]["role"] != "system":
        messages.insert(0, {"role": "system", "content": SMOLLM2_SYSTEM_PROMPT})
    text = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
    return text + ("<|im_start|>assistant\n" if add_generation_prompt else "")


@mistake("check_pair_counts", "count overlapping occurrences too")
def counts_skip_overlaps(words, freqs):
    out = Counter()
    for w, f in zip(words, freqs):
        i = 0
        while i < len(w) - 1:
            out[w[i], w[i + 1]] += f
            i += 2 if w[i] == w[i + 1] else 1  # "like merge_pair: (a, a) in [a, a, a] only once"
    return out


@mistake("check_apply_merges", "do not replay the table once in rank order")
def apply_replay_in_rank_order(ids, ranks, merged):
    ids = list(ids)
    for pair in sorted(ranks, key=ranks.get):
        if pair in zip(ids, ids[1:]):
            ids = bpe.merge_pair(ids, pair, merged[pair])
    return ids


@mistake("check_chat_format", "check `if messages`")
def chat_indexes_first_message(messages, add_generation_prompt=True):
    text = ""
    if messages[0]["role"] != "system":
        text += f"<|im_start|>system\n{SMOLLM2_SYSTEM_PROMPT}<|im_end|>\n"
    text += "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
    return text + ("<|im_start|>assistant\n" if add_generation_prompt else "")


@mistake("check_strip_accents", "spacing marks")
def accents_all_marks(text):
    return "".join(ch for ch in unicodedata.normalize("NFD", text) if not unicodedata.category(ch).startswith("M"))
