"""WordPiece, BERT's tokenizer (and all-MiniLM-L6-v2's): normalise, split into words, then cut each
word into the longest vocabulary pieces.

Idea. A "basic" tokeniser turns text into words:

1. clean: drop NUL, U+FFFD and control, format and private-use characters (Unicode categories
   Cc, Cf, Co; tab, newline and CR excepted), turn every whitespace character into a plain space;
2. put spaces around CJK ideographs, so each Chinese character is a word of its own (BERT's
   vocabulary has single characters, not Chinese words);
3. if ``do_lower_case``: strip accents (decompose with NFD, drop the non-spacing marks Mn:
   "é" = "e" + U+0301 -> "e") and lower-case;
4. split on whitespace, and make each punctuation character (Unicode P*, plus every ASCII
   non-alphanumeric symbol such as $ + < = > ^ ` |) a word of its own.

Then WordPiece, greedy longest-match-first: from the start of the word take the longest prefix
in the vocabulary, continue from where it ended with pieces spelled "##rest" (a continuation),
and so on:

    "unaffable" -> "un", "##aff", "##able"

If at some point no piece matches, or the word has more than 100 characters, the whole word
becomes [UNK]. Greedy is not optimal (it does not minimise the number of pieces) but it is what
BERT was trained with, so it is what must be reproduced.

The order of steps and the character classes follow HF tokenizers' BertNormalizer and
BertPreTokenizer (the tests compare with it): accents are stripped before lower-casing, and
lower-casing is per character (a word-final "Σ" becomes "σ", not "ς" as ``str.lower`` would give).
"""
from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import regex

from llmlab import validate

UNK, CLS, SEP, PAD, MASK = "[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"
SPECIAL_TOKENS = (PAD, UNK, CLS, SEP, MASK)
CONTINUATION = "##"
MAX_WORD_CHARS = 100

# Characters removed by cleaning: NUL, the replacement character, and the control (Cc), format (Cf)
# and private-use (Co) characters, except tab, newline and CR (whitespace). Unassigned code points
# (Cn) stay, as in HF tokenizers, and end up as [UNK].
_REMOVED = regex.compile(r"[\x00\ufffd]|[\p{Cc}\p{Cf}\p{Co}--[\t\n\r]]", regex.V1)
# The ideograph blocks BERT pads with spaces (CJK Unified Ideographs, Extensions A-E, Compatibility).
# Not Hiragana, Katakana or Hangul: Korean is written with spaces, Japanese kana stay in words.
# Extension E starts at U+2B820, but HF tokenizers starts that range at U+2B920; we follow it, so the ids match.
_CJK = regex.compile(
    r"([\u4e00-\u9fff\u3400-\u4dbf\U00020000-\U0002a6df\U0002a700-\U0002b73f\U0002b740-\U0002b81f"
    r"\U0002b920-\U0002ceaf\uf900-\ufaff\U0002f800-\U0002fa1f])"
)
_PUNCT = r"[\p{P}!-/:-@\[-`{-~]"  # Unicode punctuation, and ASCII 33-47, 58-64, 91-96, 123-126
# A word is a run of characters that are neither whitespace nor punctuation; a punctuation
# character is a word alone.
_WORDS = regex.compile(rf"{_PUNCT}|(?:(?!{_PUNCT})\S)+")


def _check_text(text) -> str:
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return text


def clean_text(text: str) -> str:
    """Drop NUL, U+FFFD, control, format and private-use characters; each whitespace becomes " "."""
    return regex.sub(r"\s", " ", _REMOVED.sub("", _check_text(text)))


def pad_cjk(text: str) -> str:
    """Put a space on both sides of every CJK ideograph: "我爱NLP" -> " 我  爱 NLP"."""
    return _CJK.sub(r" \1 ", _check_text(text))


def strip_accents(text: str) -> str:
    """Decompose (NFD) and drop non-spacing marks: "Café naïve" -> "Cafe naive"."""
    return regex.sub(r"\p{Mn}", "", unicodedata.normalize("NFD", _check_text(text)))


def basic_tokenize(text: str, do_lower_case: bool = True) -> list[str]:
    """BERT's words: clean, pad CJK, (strip accents, lower-case), split on spaces and punctuation."""
    validate.flag("do_lower_case", do_lower_case)
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    text = pad_cjk(clean_text(text))
    if do_lower_case:
        # Per character, as HF tokenizers does: str.lower() would apply the final-sigma rule.
        text = "".join(map(str.lower, strip_accents(text)))
    return _WORDS.findall(text)


def wordpiece(word: str, vocab: dict[str, int], unk: str = UNK, max_chars: int = MAX_WORD_CHARS) -> list[str]:
    """Greedy longest-match-first pieces of one word; ``[unk]`` if some part matches nothing."""
    if not isinstance(word, str):
        raise TypeError(f"word must be a str, got {type(word).__name__}")
    if not isinstance(vocab, Mapping):
        raise TypeError(f"vocab must be a dict of piece -> id, got {type(vocab).__name__}")
    if not isinstance(unk, str) or not unk:
        raise TypeError(f"unk must be a non-empty str (the piece of an unknown word), got {unk!r}")
    max_chars = validate.positive_int("max_chars", max_chars)
    if len(word) > max_chars:
        return [unk]
    pieces = []
    start = 0
    while start < len(word):
        # Try the longest candidate first, shrinking from the right.
        for end in range(len(word), start, -1):
            piece = word[start:end] if start == 0 else CONTINUATION + word[start:end]
            if piece in vocab:
                break
        else:
            return [unk]  # nothing matches here: the whole word is unknown, not just this part
        pieces.append(piece)
        start = end
    return pieces


@dataclass
class WordPiece:
    """A BERT tokenizer: ``tokenize`` to pieces, ``encode`` to ids with [CLS] ... [SEP].

    vocab: piece -> id (the line numbers of ``vocab.txt``).
    Special tokens written in the text ("[SEP]", "[MASK]", exactly so) become their id, as in
    HF tokenizers, where they are matched before normalisation.
    """

    vocab: dict[str, int] = field(repr=False)
    do_lower_case: bool = True
    max_chars: int = MAX_WORD_CHARS

    def __post_init__(self):
        if not isinstance(self.vocab, dict) or not all(
            isinstance(t, str) and isinstance(i, int) for t, i in self.vocab.items()
        ):
            raise TypeError("vocab must be a dict of str piece -> int id")
        missing = [s for s in SPECIAL_TOKENS if s not in self.vocab]
        if missing:
            raise ValueError(f"vocab lacks the special tokens {missing}")
        validate.flag("do_lower_case", self.do_lower_case)
        self.max_chars = validate.positive_int("max_chars", self.max_chars)
        self.id_to_token = {i: t for t, i in self.vocab.items()}
        self._specials = regex.compile("(" + "|".join(regex.escape(s) for s in SPECIAL_TOKENS) + ")")
        self._cache: dict[str, list[str]] = {}

    def _word_pieces(self, word: str) -> list[str]:
        pieces = self._cache.get(word)
        if pieces is None:
            pieces = self._cache[word] = wordpiece(word, self.vocab, UNK, self.max_chars)
        return pieces

    def tokenize(self, text: str) -> list[str]:
        """The pieces of ``text``, without [CLS]/[SEP]."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        out: list[str] = []
        # split() with a capturing group alternates text, special token, text, ...
        for k, part in enumerate(self._specials.split(text)):
            if k % 2:
                out.append(part)
            else:
                for word in basic_tokenize(part, self.do_lower_case):
                    out += self._word_pieces(word)
        return out

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """Ids of ``text``; with ``add_special_tokens``: [CLS] ids [SEP], the input BERT expects."""
        validate.flag("add_special_tokens", add_special_tokens)
        ids = [self.vocab[t] for t in self.tokenize(text)]
        return [self.vocab[CLS], *ids, self.vocab[SEP]] if add_special_tokens else ids

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = True) -> str:
        """Pieces joined by spaces, "##" continuations glued back. Lossy: case, accents and the
        spacing around punctuation are gone ("hello , world !")."""
        validate.flag("skip_special_tokens", skip_special_tokens)
        ids = validate.token_ids("ids", list(ids) if isinstance(ids, Iterator) else ids, allow_empty=True)
        unknown = next((i for i in ids if i not in self.id_to_token), None)
        if unknown is not None:
            raise ValueError(f"ids holds id {unknown}, which is not in the vocabulary (size {len(self.vocab)})")
        tokens = [t for t in map(self.id_to_token.get, ids) if not (skip_special_tokens and t in SPECIAL_TOKENS)]
        return " ".join(tokens).replace(" " + CONTINUATION, "")


def load_vocab(path: str | Path) -> dict[str, int]:
    """``vocab.txt``: one piece per line, the id is the line number (from 0)."""
    with open(validate.path("path", path), encoding="utf-8") as f:
        return {line.rstrip("\n"): i for i, line in enumerate(f)}


def load_minilm_tokenizer(path: str | Path | None = None) -> WordPiece:
    """all-MiniLM-L6-v2's tokenizer (uncased BERT vocabulary, 30,522 pieces) from its ``vocab.txt``."""
    if path is None:
        from llmlab.models import minilm_dir

        path = minilm_dir() / "vocab.txt"
    return WordPiece(load_vocab(path), do_lower_case=True)
