"""Common mistakes in 03_tokenizers."""
import unicodedata
from collections import Counter

from llmlab.grading.tokenizers import _highest_rank_first, _leftmost_first
from llmlab.tokenization import bpe
from llmlab.tokenization import wordpiece as wp


def _decode(ids, vocab):
    return b"".join(vocab[i] for i in ids).decode("utf-8", errors="replace")


REFERENCE = {
    "check_bytes_to_unicode": bpe.bytes_to_unicode,
    "check_pair_counts": bpe.pair_counts,
    "check_merge_pair": bpe.merge_pair,
    "check_pair_count_change": bpe.pair_count_change,
    "check_apply_merges": bpe.apply_merges,
    "check_decode": _decode,
    "check_chat_format": bpe.chat_template,
    "check_strip_accents": wp.strip_accents,
    "check_pad_cjk": wp.pad_cjk,
    "check_wordpiece": wp.wordpiece,
}


# bytes <-> unicode
def b2u_identity():
    return {b: chr(b) for b in range(256)}


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


def b2u_ascii_only():
    printable = set(range(ord("!"), ord("~") + 1))
    out, n = {}, 0
    for b in range(256):
        out[b] = chr(b) if b in printable else chr(256 + n)
        n += b not in printable
    return out


def b2u_collides():
    want = bpe.bytes_to_unicode()
    return {b: (chr(255 + n) if want[b] != chr(b) else chr(b)) for n, b in enumerate(range(256))}


# pair counts
def counts_unweighted(words, freqs):
    return bpe.pair_counts(words, [1] * len(words))


def counts_across_words(words, freqs):
    stream = [t for w, f in zip(words, freqs) for _ in range(f) for t in w]
    return Counter(zip(stream, stream[1:]))


def counts_distinct(words, freqs):
    out = Counter()
    for w, f in zip(words, freqs):
        for p in set(zip(w, w[1:])):
            out[p] += f
    return out


# merge_pair
def merge_first_only(ids, pair, new_id):
    for i in range(len(ids) - 1):
        if (ids[i], ids[i + 1]) == pair:
            return list(ids[:i]) + [new_id] + list(ids[i + 2 :])
    return list(ids)


def merge_overlapping(ids, pair, new_id):
    out = []
    for i in range(len(ids)):
        if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:
            out.append(new_id)
        elif not (i > 0 and (ids[i - 1], ids[i]) == pair):
            out.append(ids[i])
    return out


def merge_right_to_left(ids, pair, new_id):
    return bpe.merge_pair(list(ids)[::-1], pair[::-1], new_id)[::-1]


# pair_count_change
def change_no_subtraction(old, new, freq):
    return Counter({p: freq * n for p, n in Counter(zip(new, new[1:])).items()})


def change_unweighted(old, new, freq):
    return bpe.pair_count_change(old, new, 1)


def change_reversed(old, new, freq):
    return bpe.pair_count_change(new, old, freq)


# apply_merges
def apply_leftmost(ids, ranks, merged):
    return _leftmost_first(ids, ranks, merged)


def apply_highest(ids, ranks, merged):
    return _highest_rank_first(ids, ranks, merged)


def apply_one_pass(ids, ranks, merged):
    ids = list(ids)
    pairs = [p for p in zip(ids, ids[1:]) if p in ranks]
    if pairs:
        best = min(pairs, key=ranks.get)
        ids = bpe.merge_pair(ids, best, merged[best])
    return ids


# decode
def decode_per_token(ids, vocab):
    return "".join(vocab[i].decode("utf-8", errors="replace") for i in ids)


def decode_strict(ids, vocab):
    return b"".join(vocab[i] for i in ids).decode("utf-8")


# chat template
def chat_no_default_system(messages, add_generation_prompt=True):
    text = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
    return text + ("<|im_start|>assistant\n" if add_generation_prompt else "")


def chat_no_generation_prompt(messages, add_generation_prompt=True):
    return bpe.chat_template(messages, add_generation_prompt=False)


def chat_always_generation_prompt(messages, add_generation_prompt=True):
    return bpe.chat_template(messages, add_generation_prompt=True)


# strip accents
def accents_nfc(text):
    return "".join(ch for ch in unicodedata.normalize("NFC", text) if unicodedata.category(ch) != "Mn")


def accents_ascii_only(text):
    return unicodedata.normalize("NFD", text).encode("ascii", "ignore").decode()


# pad CJK
def pad_basic_block_only(text):
    return "".join(f" {ch} " if "\u4e00" <= ch <= "\u9fff" else ch for ch in text)


def pad_all_non_ascii(text):
    return "".join(f" {ch} " if ord(ch) > 0x2E80 and not ch.isspace() else ch for ch in text)


# wordpiece
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


def wp_no_length_limit(word, vocab, unk="[UNK]", max_chars=100):
    return wp.wordpiece(word, vocab, unk, max_chars=10_000)


MUTANTS = [
    ("check_bytes_to_unicode", b2u_identity, "stand-ins chr(256 + n)"),
    ("check_bytes_to_unicode", b2u_space_printable, "stand-ins chr(256 + n)"),
    ("check_bytes_to_unicode", b2u_ascii_only, "printable bytes are"),
    ("check_bytes_to_unicode", b2u_collides, "each byte needs its own character"),
    ("check_pair_counts", counts_unweighted, "frequency"),
    ("check_pair_counts", counts_across_words, "never cross word boundaries"),
    ("check_pair_counts", counts_distinct, "count every occurrence"),
    ("check_merge_pair", merge_first_only, "every occurrence"),
    ("check_merge_pair", merge_overlapping, "consumes both symbols"),
    ("check_merge_pair", merge_right_to_left, "scan left to right"),
    ("check_pair_count_change", change_no_subtraction, "subtract freq"),
    ("check_pair_count_change", change_unweighted, "counts freq times"),
    ("check_pair_count_change", change_reversed, "not the other way round"),
    ("check_apply_merges", apply_leftmost, "not the leftmost mergeable pair"),
    ("check_apply_merges", apply_highest, "not the highest"),
    ("check_apply_merges", apply_one_pass, "one pass is not enough"),
    ("check_decode", decode_per_token, "decode once"),
    ("check_decode", decode_strict, "errors='replace'"),
    ("check_chat_format", chat_no_default_system, "default system prompt"),
    ("check_chat_format", chat_no_generation_prompt, "the model writes its answer after it"),
    ("check_chat_format", chat_always_generation_prompt, "only when add_generation_prompt is True"),
    ("check_strip_accents", accents_nfc, "NFD"),
    ("check_strip_accents", accents_ascii_only, "remove only the combining marks"),
    ("check_pad_cjk", pad_basic_block_only, "beyond U+4E00–U+9FFF"),
    ("check_pad_cjk", pad_all_non_ascii, "kana and Korean Hangul"),
    ("check_wordpiece", wp_shortest_first, "longest piece"),
    ("check_wordpiece", wp_no_prefix, "'##' prefix"),
    ("check_wordpiece", wp_partial_unk, "the whole word is a single [UNK]"),
    ("check_wordpiece", wp_no_length_limit, "longer than max_chars"),
]
