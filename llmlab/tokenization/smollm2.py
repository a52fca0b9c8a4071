"""SmolLM2-135M-Instruct's tokenizer and chat template, read from its GGUF file.

The algorithm is the generic byte-level BPE of ``llmlab.tokenization.bpe``; what is SmolLM2's own
lives here: its pre-tokenisation regex, its vocabulary and merges (``load_smollm2_tokenizer``) and
the ChatML conversation format its Instruct model was tuned on (``chat_template``).
"""
from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from llmlab import validate
from llmlab.tokenization.bpe import ByteBPE, unicode_to_bytes

# SmolLM2's pre-tokeniser ("smollm" in its GGUF; in HF tokenizers terms a Sequence of
# Digits(individual_digits=True) and ByteLevel(add_prefix_space=False, use_regex=True)) runs in two
# steps: (1) every numeric character (\p{N}) becomes a piece of its own, (2) GPT-2's pattern runs on
# the text between them. One regex does both: "\p{N}" first; no " ?\p{N}+" alternative; and a
# whitespace run just before a digit is taken whole ("\s+(?=\p{N})"): in step (2) that run ended its
# piece, so "\s+(?!\S)" took all of it instead of leaving its last space to the next word. So
# "x = 1234" -> "x", " =", " ", "1", "2", "3", "4" (the tests check this against HF tokenizers).
SMOLLM2_PATTERN = r"""\p{N}|'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?[^\s\p{L}\p{N}]+|\s+(?=\p{N})|\s+(?!\S)|\s+"""

# SmolLM2-Instruct's chat template (tokenizer.chat_template in its GGUF) adds this system prompt
# when the conversation does not start with one.
SMOLLM2_SYSTEM_PROMPT = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"


def gguf_tokenizer_fields(path: str | Path) -> dict:
    """The tokenizer.* metadata of a GGUF file (cached: converting 49K strings takes a moment)."""
    return _tokenizer_fields(str(validate.path("path", path)))


@lru_cache(maxsize=2)
def _tokenizer_fields(path: str) -> dict:
    from llmlab.models.gguf import open_gguf  # shares the parsed header with the model loader

    reader = open_gguf(path)
    return {k: f.contents() for k, f in reader.fields.items() if k.startswith("tokenizer.")}


def load_smollm2_tokenizer(path: str | Path | None = None) -> ByteBPE:
    """SmolLM2-135M-Instruct's tokenizer, read from its GGUF file (49,152 tokens, 48,900 merges).

    The GGUF stores tokens in GPT-2's printable spelling (``tokenizer.ggml.tokens``), merges as
    "Ġ t" strings in rank order, token types (3 = control: the 17 special tokens such as
    <|endoftext|>, <|im_start|>, <|im_end|>) and the pre-tokeniser name ("smollm": digits split
    one by one, then GPT-2's regex; see ``SMOLLM2_PATTERN``).
    """
    if path is None:
        from llmlab.models import smollm2_gguf_path

        path = smollm2_gguf_path()
    else:
        path = validate.path("path", path)
    meta = _tokenizer_fields(str(path))
    if meta.get("tokenizer.ggml.model") != "gpt2" or meta.get("tokenizer.ggml.pre") != "smollm":
        raise ValueError(
            f"{path} is not a SmolLM tokenizer: model={meta.get('tokenizer.ggml.model')!r}, "
            f"pre-tokenizer={meta.get('tokenizer.ggml.pre')!r} (expected 'gpt2' and 'smollm')"
        )
    tokens, types = meta["tokenizer.ggml.tokens"], meta["tokenizer.ggml.token_type"]
    control = 3  # gguf.TokenType.CONTROL
    special = {tok: i for i, (tok, kind) in enumerate(zip(tokens, types)) if kind == control}
    # Special tokens are stored as their text; ordinary ones in the printable byte spelling.
    vocab = {i: tok.encode("utf-8") if tok in special else unicode_to_bytes(tok) for i, tok in enumerate(tokens)}
    index = {tok: i for i, tok in enumerate(tokens)}
    merges = []
    for line in meta["tokenizer.ggml.merges"]:
        left, right = line.split(" ")  # the printable spelling has no spaces: exactly two halves
        merges.append((index[left], index[right]))
    return ByteBPE(merges, vocab, special, SMOLLM2_PATTERN)


def chat_template(messages: Sequence[dict], add_generation_prompt: bool = True) -> str:
    """A conversation as SmolLM2-Instruct's chat template writes it (ChatML):

        <|im_start|>system\\n{system}<|im_end|>\\n<|im_start|>user\\n{text}<|im_end|>\\n<|im_start|>assistant\\n

    Each message is ``{"role": ..., "content": ...}``. As in the template stored in the GGUF, a
    default system prompt (``SMOLLM2_SYSTEM_PROMPT``) comes first when the first message is not a
    system message, and ``add_generation_prompt`` appends the header the model answers after.
    """
    validate.flag("add_generation_prompt", add_generation_prompt)
    if isinstance(messages, (str, dict)) or not isinstance(messages, Sequence):
        raise TypeError(
            f"messages must be a list of {{'role': ..., 'content': ...}} dicts, got {type(messages).__name__}"
        )
    parts = []
    for k, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str) or not isinstance(
            message.get("content"), str
        ):
            raise TypeError(f"message {k} must be a dict with str 'role' and 'content', got {message!r}")
        if k == 0 and message["role"] != "system":
            parts.append(f"<|im_start|>system\n{SMOLLM2_SYSTEM_PROMPT}<|im_end|>\n")
        parts.append(f"<|im_start|>{message['role']}\n{message['content']}<|im_end|>\n")
    if add_generation_prompt:
        parts.append("<|im_start|>assistant\n")
    return "".join(parts)
