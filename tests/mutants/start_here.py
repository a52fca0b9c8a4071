"""Common mistakes in 00_start_here."""
from tests.mutants import mistake


REFERENCE = {
    "check_char_and_byte_counts": lambda text: (len(text), len(text.encode("utf-8"))),
    "check_normalize": lambda counts: {k: v / sum(counts.values()) for k, v in counts.items()},
}


@mistake("check_char_and_byte_counts", "counted characters twice")
def counts_chars_twice(text):
    return len(text), len(text)


@mistake("check_char_and_byte_counts", "the order is (characters, bytes)")
def swapped(text):
    return len(text.encode("utf-8")), len(text)


@mistake("check_char_and_byte_counts", "UTF-16")
def utf16(text):
    return len(text), len(text.encode("utf-16-le"))


@mistake("check_char_and_byte_counts", "return both numbers")
def returns_list(text):
    return [len(text), len(text.encode())]


@mistake("check_normalize", "not by the number of keys")
def divide_by_keys(counts):
    return {k: v / len(counts) for k, v in counts.items()}


@mistake("check_normalize", "integer division")
def integer_division(counts):
    total = sum(counts.values())
    return {k: v // total for k, v in counts.items()}


@mistake("check_normalize", "divide each count by the total")
def unchanged(counts):
    return dict(counts)


# ---------------------------------------------------------------- right on the examples, wrong in general

@mistake("check_char_and_byte_counts", "3 below U+10000", kind="overfit")
def bytes_by_hand(text):
    return len(text), sum(1 if ord(ch) < 0x80 else 2 if ord(ch) < 0x1000 else 3 if ord(ch) < 0x10000 else 4
                          for ch in text)


@mistake("check_char_and_byte_counts", "do not normalise the text first", kind="overfit")
def counts_nfc(text):
    import unicodedata

    text = unicodedata.normalize("NFC", text)
    return len(text), len(text.encode("utf-8"))


@mistake("check_normalize", "also one whose count is 0", kind="overfit")
def drops_zero_counts(counts):
    total = sum(counts.values())
    return {k: v / total for k, v in counts.items() if v}


# ---------------------------------------------------------------- changing the caller's dict

@mistake("check_normalize", "leave the inputs as they are", kind="inplace")
def normalize_in_place(counts):
    total = sum(counts.values())
    for k in counts:
        counts[k] /= total
    return counts
