"""Common mistakes in 00_start_here."""

REFERENCE = {
    "check_char_and_byte_counts": lambda text: (len(text), len(text.encode("utf-8"))),
    "check_normalize": lambda counts: {k: v / sum(counts.values()) for k, v in counts.items()},
}


def counts_chars_twice(text):
    return len(text), len(text)


def swapped(text):
    return len(text.encode("utf-8")), len(text)


def utf16(text):
    return len(text), len(text.encode("utf-16-le"))


def returns_list(text):
    return [len(text), len(text.encode())]


def divide_by_keys(counts):
    return {k: v / len(counts) for k, v in counts.items()}


def integer_division(counts):
    total = sum(counts.values())
    return {k: v // total for k, v in counts.items()}


def unchanged(counts):
    return dict(counts)


MUTANTS = [
    ("check_char_and_byte_counts", counts_chars_twice, "counted characters twice"),
    ("check_char_and_byte_counts", swapped, "the order is (characters, bytes)"),
    ("check_char_and_byte_counts", utf16, "UTF-16"),
    ("check_char_and_byte_counts", returns_list, "return both numbers"),
    ("check_normalize", divide_by_keys, "not by the number of keys"),
    ("check_normalize", integer_division, "integer division"),
    ("check_normalize", unchanged, "divide each count by the total"),
]
