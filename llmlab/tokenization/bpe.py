"""Byte-level BPE (byte-pair encoding), the tokenizer of GPT-2, Llama 3 and SmolLM2.

This module is the generic algorithm; ``llmlab.tokenization.smollm2`` reads SmolLM2's own
vocabulary, merges and chat template from its GGUF file.

Idea. Start from the 256 byte values, so every string has a spelling and nothing is ever
"unknown". Training repeatedly finds the most frequent adjacent pair of symbols and merges it
into a new symbol:

    (a, b) = argmax_{(x, y)} count(x, y),   count(x, y) = sum_w freq(w) * #{i : w_i = x, w_{i+1} = y}

until the vocabulary has ``vocab_size`` entries (256 bytes + one per merge + special tokens).
Encoding replays the merges on new text, earliest-learned (lowest rank) first; decoding just
concatenates the bytes of each token.

Three details make it practical:

* Pre-tokenisation. A regex first cuts the text into words, numbers, punctuation runs and
  spaces; merges never cross those pieces ("dog." never becomes one token), and each distinct
  piece is counted (training) or encoded (a cache) only once.
* Incremental training. After merging (a, b) only the words that contain (a, b) change, so only
  their pair counts are updated; a heap finds the next most frequent pair.
* Printable stand-ins for bytes. GPT-2 stores tokens as strings in which each byte is shown as a
  printable character (``bytes_to_unicode``): the space byte is "Ġ", newline "Ċ". Vocabulary
  files (and the GGUF of SmolLM2) use that spelling; inside this module tokens are plain ``bytes``.

Text handling, explicitly:

* Lone surrogates ("\\ud800"; a ``str`` can hold them, UTF-8 cannot) are rejected with a
  ValueError by ``encode``: they are not text, and any silent replacement would break the
  round trip ``decode(encode(s)) == s``, which holds for every other ``str``.
* ``decode`` turns bytes into text with ``errors="replace"``: a token list that stops in the middle
  of a multi-byte UTF-8 character (one token of a Chinese character split in two, e.g. during
  streaming generation) gives U+FFFD "�" for the incomplete part. Use ``decode_bytes`` and join the
  bytes before decoding to avoid that.
* A vocabulary may lack some bytes (SmolLM2 has no token for 21 bytes, e.g. 0x04 or 0xFF that
  never occur in its training data). Encoding text that needs such a byte is a ValueError; HF
  ``tokenizers`` silently drops it instead.
"""
from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import regex

from llmlab import validate

# GPT-2's pre-tokeniser: contractions, optional space + letters, optional space + numbers,
# optional space + other symbols, then whitespace. "\s+(?!\S)" keeps the last space of a run for
# the next word, so " world" stays one piece: "hello   world" -> "hello", "  ", " world".
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""

Pair = tuple[int, int]

_SURROGATE = regex.compile(r"[\ud800-\udfff]")


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's map from each byte value to a printable character that stands for it.

    Printable Latin-1 bytes (! to ~, ¡ to ¬, ® to ÿ) stand for themselves; the 68 others (control
    bytes, space, DEL, NBSP, soft hyphen) get U+0100, U+0101, ... in byte order, so the space byte
    0x20 is "Ġ" (U+0120) and newline 0x0A is "Ċ". Vocabulary files store tokens in this spelling.
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def unicode_to_bytes(token: str) -> bytes:
    """Inverse of ``bytes_to_unicode`` for a whole token string: "Ġthe" -> b" the"."""
    if not isinstance(token, str):
        raise TypeError(f"token must be a str, got {type(token).__name__}")
    try:
        return bytes(_UNICODE_TO_BYTE[ch] for ch in token)
    except KeyError as e:
        raise ValueError(f"{token!r} is not in GPT-2's byte-level spelling: {e.args[0]!r} stands for no byte") from None


_BYTE_TO_UNICODE = bytes_to_unicode()
_UNICODE_TO_BYTE = {ch: b for b, ch in _BYTE_TO_UNICODE.items()}

# Tie-break order of the 256 byte symbols: the order of their printable stand-ins, which is how HF
# tokenizers numbers them (its alphabet is sorted by character), so that our merges equal its
# BpeTrainer's merge for merge. Printable bytes keep byte order; space and the control bytes come last.
_BYTE_ORDER = {b: i for i, b in enumerate(sorted(range(256), key=lambda b: _BYTE_TO_UNICODE[b]))}


def pretokenize(text: str, pattern: str = GPT2_PATTERN) -> list[str]:
    """Cut ``text`` into the pieces that BPE works on separately (merges never cross them)."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return _check_pattern(pattern).findall(text)


@lru_cache(maxsize=16)
def _compiled(pattern: str) -> regex.Pattern:
    return regex.compile(pattern)


def _check_pattern(pattern) -> regex.Pattern:
    """A pre-tokenisation regex: a non-empty str that compiles (an empty one would find only empty pieces)."""
    if not isinstance(pattern, str):
        raise TypeError(f"pattern must be a regex str, got {type(pattern).__name__}")
    if not pattern:
        raise ValueError("pattern is empty: it would cut every text into empty pieces")
    try:
        return _compiled(pattern)
    except regex.error as e:
        raise ValueError(f"pattern is not a valid regex: {e}") from None


def _check_ids(name: str, ids) -> list[int]:
    """A word as symbol ids: a sequence of ints >= 0, maybe empty (not a str, whose characters are no ids)."""
    return validate.token_ids(name, ids, allow_empty=True)


def merge_pair(ids: Sequence[int], pair: Pair, new_id: int) -> list[int]:
    """Replace every occurrence of ``pair`` in ``ids``, left to right, by ``new_id``.

    Left to right matters for overlaps: merging (a, a) in [a, a, a] gives [aa, a].
    """
    ids = _check_ids("ids", ids)
    validate.size("new_id", new_id, minimum=0)
    if not isinstance(pair, tuple) or len(pair) != 2:
        raise TypeError(f"pair must be a tuple of two ids, got {pair!r:.60}")
    _check_ids("pair", pair)
    return _merge_pair(ids, pair, new_id)


def _merge_pair(ids: Sequence[int], pair: Pair, new_id: int) -> list[int]:
    """``merge_pair`` without its checks, for the trainers' inner loops."""
    a, b = pair
    out: list[int] = []
    i, n = 0, len(ids)
    while i < n:
        if ids[i] == a and i + 1 < n and ids[i + 1] == b:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


# ---------------------------------------------------------------------------------------- training


def pair_counts(words: Sequence[Sequence[int]], freqs: Sequence[int]) -> Counter[Pair]:
    """count(x, y) = sum over words w of freq(w) * (occurrences of the adjacent pair (x, y) in w)."""
    if isinstance(words, str) or not isinstance(words, Sequence):
        raise TypeError(f"words must be a list of words (lists of ids), got {type(words).__name__}")
    for i, word in enumerate(words):
        _check_ids(f"words[{i}]", word)
    if isinstance(freqs, str) or not isinstance(freqs, Sequence):
        raise TypeError(f"freqs must be a list of ints, got {type(freqs).__name__}")
    if len(freqs) != len(words):
        raise ValueError(f"words and freqs must have the same length (one frequency per word), "
                         f"got {len(words)} and {len(freqs)}")
    for i, freq in enumerate(freqs):
        validate.positive_int(f"freqs[{i}]", freq)
    return _pair_counts(words, freqs)


def _pair_counts(words: Sequence[Sequence[int]], freqs: Sequence[int]) -> Counter[Pair]:
    """``pair_counts`` without its checks, for the trainers."""
    counts: Counter[Pair] = Counter()
    for word, freq in zip(words, freqs):
        for pair in zip(word, word[1:]):
            counts[pair] += freq
    return counts


def pair_count_change(
    old: Sequence[int], new: Sequence[int], freq: int, into: Counter[Pair] | None = None
) -> Counter[Pair]:
    """How the pair counts move when a word seen ``freq`` times is rewritten from ``old`` to ``new``:
    its old pairs lose ``freq``, its new pairs gain it (pairs in both cancel out).

    ``into``: a Counter to add the change to (the trainer sums many words' changes; a fresh
    Counter per word would cost it a third of its time).
    """
    validate.positive_int("freq", freq)  # how often the word was seen
    old, new = _check_ids("old", old), _check_ids("new", new)
    if into is not None and not isinstance(into, Counter):
        raise TypeError(f"into must be a Counter (or None), got {type(into).__name__}")
    return _pair_count_change(old, new, freq, into)


def _pair_count_change(old: Sequence[int], new: Sequence[int], freq: int, into: Counter[Pair] | None = None):
    """``pair_count_change`` without its checks, for ``train_bpe``'s inner loop."""
    delta: Counter[Pair] = Counter() if into is None else into
    for pair in zip(old, old[1:]):
        delta[pair] -= freq
    for pair in zip(new, new[1:]):
        delta[pair] += freq
    return delta


def apply_merges(ids: Sequence[int], ranks: dict[Pair, int], merged: dict[Pair, int]) -> list[int]:
    """Encode one pre-token given its byte ids: while some adjacent pair is a learned merge, merge
    the one learned first (lowest rank) into ``merged[pair]``. Later merges were learned on top of
    earlier ones, so this replays training's order."""
    ids = _check_ids("ids", ids)
    for name, table in (("ranks", ranks), ("merged", merged)):
        if not isinstance(table, dict):
            raise TypeError(f"{name} must be a dict of pair -> int, got {type(table).__name__}")
    try:
        return _apply_merges(ids, ranks, merged)
    except KeyError as e:  # explained after the fact
        raise ValueError(f"merged has no entry for the pair {e.args[0]} of ranks: every ranked pair needs its "
                         "merged id") from None


def _apply_merges(ids: Sequence[int], ranks: dict[Pair, int], merged: dict[Pair, int]) -> list[int]:
    """``apply_merges`` without its checks, for ``ByteBPE``'s encoding of each piece."""
    ids, inf = list(ids), float("inf")
    while len(ids) > 1:
        pair = min(zip(ids, ids[1:]), key=lambda p: ranks.get(p, inf))
        if pair not in ranks:
            break
        ids = _merge_pair(ids, pair, merged[pair])
    return ids


def _tie_key(token: int) -> int:
    """Position of a symbol in the tie-break order: bytes by printable stand-in, then merges by age."""
    return _BYTE_ORDER[token] if token < 256 else token


def _check_training_args(text, vocab_size, special_tokens) -> tuple[int, list[str]]:
    """Validate the arguments of a trainer; returns (number of merges, special tokens as a list)."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    specials = _special_list(special_tokens)
    vocab_size = validate.size("vocab_size", vocab_size, minimum=256 + len(specials))  # every byte, every special
    if _SURROGATE.search(text):
        _reject_surrogate(text)
    return vocab_size - 256 - len(specials), specials


def _special_list(special_tokens) -> list[str]:
    """The special tokens of a trainer as a list of distinct non-empty strings."""
    if isinstance(special_tokens, str):
        raise TypeError("special_tokens must be a collection of strings, got one str; wrap it: [token]")
    if not isinstance(special_tokens, Iterable):
        raise TypeError(f"special_tokens must be a collection of strings, got {type(special_tokens).__name__}")
    specials = list(special_tokens)
    if any(not isinstance(s, str) or not s for s in specials):
        raise TypeError(f"special_tokens must hold non-empty strings, got {specials!r}")
    if len(set(specials)) != len(specials):
        raise ValueError(f"special_tokens must be distinct, got {specials!r}")
    return specials


def _word_counts(text: str, pattern: str, special_tokens: list[str]) -> tuple[list[list[int]], list[int]]:
    """Distinct pre-tokens as byte lists, and how often each occurs.

    Special tokens are cut out first (they separate documents; they are not text to learn from).
    """
    counts: Counter[str] = Counter()
    # split() with a capturing group returns [text, special, text, ...]: keep the texts.
    chunks = _special_regex(tuple(special_tokens)).split(text)[::2] if special_tokens else [text]
    for chunk in chunks:
        counts.update(_compiled(pattern).findall(chunk))
    words = [list(w.encode("utf-8")) for w in counts]
    return words, list(counts.values())


def _vocab_after(merges: list[Pair], special_tokens: list[str]) -> dict[int, bytes]:
    """id -> bytes: 256 bytes, one token per merge (id 256 + rank), then the special tokens."""
    vocab = {b: bytes([b]) for b in range(256)}
    for rank, (a, b) in enumerate(merges):
        vocab[256 + rank] = vocab[a] + vocab[b]
    for s in special_tokens:
        vocab[len(vocab)] = s.encode("utf-8")
    return vocab


def train_bpe(
    text: str, vocab_size: int, special_tokens: Iterable[str] = (), pattern: str = GPT2_PATTERN
) -> tuple[list[Pair], dict[int, bytes]]:
    """Learn byte-level BPE merges from ``text``; returns ``(merges, vocab)``.

    ``merges[r] = (a, b)`` is the r-th merge; it creates token ``256 + r``. ``vocab`` maps every id
    to its bytes, special tokens last. Training stops early if no pair is left to merge.

    Incremental: pair counts are kept in a dict, plus an index pair -> words that contain it. A
    merge rewrites only those words, subtracting their old pairs and adding their new ones, so the
    cost per merge is the size of the words it touches, not the corpus. A max-heap of
    (count, pair) finds the best pair; entries whose count went stale are skipped when popped.

    Ties (equal counts) go to the smaller pair (a, b) with symbols ordered as in ``_tie_key``: bytes
    in the order of their printable stand-ins, merged tokens by age. That is HF tokenizers'
    BpeTrainer's rule, so both learn the same merges from the same pre-tokens.
    """
    n_merges, specials = _check_training_args(text, vocab_size, special_tokens)
    _check_pattern(pattern)
    words, freqs = _word_counts(text, pattern, specials)

    counts = _pair_counts(words, freqs)
    where: defaultdict[Pair, set[int]] = defaultdict(set)  # pair -> words that (may) contain it
    for w, word in enumerate(words):
        for pair in zip(word, word[1:]):
            where[pair].add(w)

    # heapq is a min-heap: store -count, then the tie-break keys, so the smallest entry is the best pair.
    def entry(pair: Pair) -> tuple[int, int, int, Pair]:
        return (-counts[pair], _tie_key(pair[0]), _tie_key(pair[1]), pair)

    heap = [entry(pair) for pair in counts]
    heapq.heapify(heap)

    merges: list[Pair] = []
    while len(merges) < n_merges and heap:
        neg_count, _, _, pair = heapq.heappop(heap)
        if counts.get(pair, 0) != -neg_count:
            continue  # stale: the count changed after this entry was pushed, a fresher one exists
        new_id = 256 + len(merges)
        merges.append(pair)

        delta: Counter[Pair] = Counter()
        for w in where.pop(pair):
            old = words[w]
            new = _merge_pair(old, pair, new_id)
            if len(new) == len(old):
                continue  # the index is allowed to be stale: this word lost the pair earlier
            _pair_count_change(old, new, freqs[w], into=delta)
            for p in zip(new, new[1:]):
                where[p].add(w)
            words[w] = new

        for p, d in delta.items():
            if d == 0:
                continue
            counts[p] += d
            if counts[p] > 0:
                heapq.heappush(heap, entry(p))
            else:
                del counts[p]
    return merges, _vocab_after(merges, specials)


def train_bpe_naive(
    text: str, vocab_size: int, special_tokens: Iterable[str] = (), pattern: str = GPT2_PATTERN
) -> tuple[list[Pair], dict[int, bytes]]:
    """Same result as ``train_bpe``, the slow way: recount every pair of every word for every merge.

    Kept to show what the incremental version saves (see benchmarks/bpe_train.py).
    """
    n_merges, specials = _check_training_args(text, vocab_size, special_tokens)
    _check_pattern(pattern)
    words, freqs = _word_counts(text, pattern, specials)
    merges: list[Pair] = []
    for _ in range(n_merges):
        counts = _pair_counts(words, freqs)
        if not counts:
            break
        best = min(counts, key=lambda p: (-counts[p], _tie_key(p[0]), _tie_key(p[1])))
        merges.append(best)
        words = [_merge_pair(word, best, 256 + len(merges) - 1) for word in words]
    return merges, _vocab_after(merges, specials)


# ---------------------------------------------------------------------------------------- tokenizer


@lru_cache(maxsize=32)
def _special_regex(specials: tuple[str, ...]) -> regex.Pattern:
    # Longest first, so that of two special tokens where one is a prefix of the other the longer wins.
    alternatives = sorted(specials, key=len, reverse=True)
    return regex.compile("(" + "|".join(regex.escape(s) for s in alternatives) + ")")


def _reject_surrogate(text: str) -> None:
    pos = _SURROGATE.search(text).start()
    raise ValueError(
        f"text holds a lone surrogate U+{ord(text[pos]):04X} at index {pos}: it is not a character and has no "
        "UTF-8 bytes; clean the text first, e.g. text.encode('utf-8', 'replace').decode()"
    )


@dataclass
class ByteBPE:
    """A byte-level BPE tokenizer: ``encode`` text to ids, ``decode`` ids to text.

    merges: the merges in rank order, as pairs of ids; merge r turns (a, b) into the token whose
        bytes are vocab[a] + vocab[b].
    vocab: id -> bytes of every token (special tokens: their UTF-8 text).
    special_tokens: name -> id of tokens that are never made by merges, e.g. "<|im_end|>".
    pattern: the pre-tokenisation regex (``GPT2_PATTERN``, ``smollm2.SMOLLM2_PATTERN``).
    """

    merges: list[Pair] = field(repr=False)
    vocab: dict[int, bytes] = field(repr=False)
    special_tokens: dict[str, int] = field(default_factory=dict)
    pattern: str = GPT2_PATTERN
    cache_size: int = 100_000

    def __post_init__(self):
        if not isinstance(self.vocab, dict) or not all(
            isinstance(i, int) and isinstance(b, bytes) for i, b in self.vocab.items()
        ):
            raise TypeError("vocab must be a dict of int id -> bytes")
        if isinstance(self.merges, str) or not isinstance(self.merges, Sequence):
            raise TypeError(f"merges must be a list of (a, b) pairs of ids, got {type(self.merges).__name__}")
        for rank, pair in enumerate(self.merges):
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise TypeError(f"merges must hold (a, b) pairs of ids, got merges[{rank}] = {pair!r:.60}")
        if not isinstance(self.special_tokens, dict):
            raise TypeError(f"special_tokens must be a dict of name -> id, got {type(self.special_tokens).__name__}")
        self.cache_size = validate.size("cache_size", self.cache_size)
        _check_pattern(self.pattern)
        for name, i in self.special_tokens.items():
            if self.vocab.get(i) != name.encode("utf-8"):
                raise ValueError(f"special token {name!r} has id {i}, but vocab[{i}] is {self.vocab.get(i)!r}")
        special_ids = set(self.special_tokens.values())
        id_of = {b: i for i, b in self.vocab.items() if i not in special_ids}
        # The id of each single byte; None where the vocabulary has no token for that byte.
        self.byte_ids: list[int | None] = [id_of.get(bytes([b])) for b in range(256)]
        # pair -> rank (its position in the merge list) and pair -> id of the merged token.
        self.ranks: dict[Pair, int] = {}
        self.merged: dict[Pair, int] = {}
        for rank, (a, b) in enumerate(self.merges):
            if a not in self.vocab or b not in self.vocab:
                raise ValueError(f"merge {rank} ({a}, {b}) uses an id that is not in the vocabulary")
            new = id_of.get(self.vocab[a] + self.vocab[b])
            if new is None:
                raise ValueError(f"merge {rank} ({a}, {b}) makes {self.vocab[a] + self.vocab[b]!r}, which has no id")
            self.ranks.setdefault((a, b), rank)  # a repeated merge would never fire again: keep the first
            self.merged.setdefault((a, b), new)
        self._pieces = _compiled(self.pattern)
        self._all_specials = _special_regex(tuple(self.special_tokens)) if self.special_tokens else None
        self._cache: dict[str, list[int]] = {}

    @classmethod
    def train(
        cls, text: str, vocab_size: int, special_tokens: Iterable[str] = (), pattern: str = GPT2_PATTERN
    ) -> "ByteBPE":
        """Train on ``text`` with ``train_bpe`` and wrap the result in a tokenizer."""
        specials = _special_list(special_tokens)
        merges, vocab = train_bpe(text, vocab_size, specials, pattern)
        first_special = len(vocab) - len(specials)
        return cls(merges, vocab, {s: first_special + k for k, s in enumerate(specials)}, pattern)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    # -- encoding ---------------------------------------------------------------------------------

    def _bpe(self, piece: str) -> list[int]:
        """Ids of one pre-token: start from its bytes, apply the lowest-rank merge until none applies."""
        ids = [self.byte_ids[b] for b in piece.encode("utf-8")]
        if None in ids:
            bad = piece.encode("utf-8")[ids.index(None)]
            raise ValueError(f"byte 0x{bad:02X} (in {piece!r}) has no token in this vocabulary")
        return _apply_merges(ids, self.ranks, self.merged)

    def encode_ordinary(self, text: str) -> list[int]:
        """Encode ``text`` ignoring special tokens: "<|im_end|>" in it is spelled like any other text."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        if _SURROGATE.search(text):
            _reject_surrogate(text)
        ids: list[int] = []
        cache = self._cache
        for piece in self._pieces.findall(text):
            piece_ids = cache.get(piece)
            if piece_ids is None:
                piece_ids = self._bpe(piece)
                if len(cache) >= self.cache_size:
                    cache.clear()  # crude but bounded: a cache must not grow with every text ever seen
                cache[piece] = piece_ids
            ids.extend(piece_ids)
        return ids

    def _special_splitter(self, allowed_special) -> regex.Pattern | None:
        """The regex that finds the allowed special tokens in text (None: treat none as special)."""
        if isinstance(allowed_special, str):
            if allowed_special == "all":
                return self._all_specials
            if allowed_special == "none":
                return None
            raise ValueError(f"allowed_special must be 'all', 'none' or a collection of names, got {allowed_special!r}")
        try:
            names = tuple(sorted(set(allowed_special)))
        except TypeError:
            raise TypeError(
                f"allowed_special must be 'all', 'none' or a collection of names, got {type(allowed_special).__name__}"
            ) from None
        unknown = [n for n in names if n not in self.special_tokens]
        if unknown:
            raise ValueError(f"unknown special token(s) {unknown}; this tokenizer has {sorted(self.special_tokens)}")
        return _special_regex(names) if names else None

    def encode(self, text: str, allowed_special: str | Iterable[str] = "all") -> list[int]:
        """Token ids of ``text``.

        Special tokens are found first and become their single id; the text between them is
        pre-tokenised and each piece is BPE-encoded (with a cache, since pieces repeat a lot).
        ``allowed_special``: "all" (default, as HF tokenizers does), "none" (every special token
        is treated as plain text), or the names that count as special.
        """
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        splitter = self._special_splitter(allowed_special)
        if splitter is None:
            return self.encode_ordinary(text)
        ids: list[int] = []
        start = 0
        for m in splitter.finditer(text):
            ids += self.encode_ordinary(text[start : m.start()])
            ids.append(self.special_tokens[m.group()])
            start = m.end()
        ids += self.encode_ordinary(text[start:])
        return ids

    # -- decoding ---------------------------------------------------------------------------------

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        """The bytes of ``ids`` joined: exact, also for ids that end inside a UTF-8 character."""
        ids = validate.token_ids("ids", list(ids) if isinstance(ids, Iterator) else ids, allow_empty=True)
        unknown = next((i for i in ids if i not in self.vocab), None)
        if unknown is not None:
            raise ValueError(f"ids holds id {unknown}, which is not in the vocabulary (size {len(self.vocab)})")
        return b"".join(self.vocab[i] for i in ids)

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids``. Bytes that are not valid UTF-8 (e.g. half a character) become U+FFFD."""
        return self.decode_bytes(ids).decode("utf-8", errors="replace")


# ---------------------------------------------------------------------------------------- SmolLM2
