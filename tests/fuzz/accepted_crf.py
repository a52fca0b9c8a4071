"""Bad-looking values that are in fact fine for the linear-chain CRF of notebook 02 (``llmlab.tokenization.crf``;
merged into ``accepted.ACCEPTED``)."""

_ALONE = "a window of the character alone (documented: offsets -width .. +width)"

ACCEPTED: dict[str, str] = {
    "llmlab.tokenization.crf.CRFConfig(weight_decay=<zero>)": "no L2 penalty: plain Adam",
    "llmlab.tokenization.crf.CRFConfig(width=<zero>)": _ALONE,
    "llmlab.tokenization.crf.CharCRF(width=<zero>)": _ALONE,
    "llmlab.tokenization.crf.CharCRF.forward(ids=<empty>)": "a batch of no sentences has (0, T, K) emissions",
    "llmlab.tokenization.crf.CharCRF.forward(ids=<missing_dim>)": "one sentence (T,) is a batch of one (documented)",
    "llmlab.tokenization.crf.char_windows(ids=<extra_dim>)": "ids (..., T): any number of leading dims (documented)",
    "llmlab.tokenization.crf.char_windows(pad_id=<huge>)": "an id written in the padding, not a size to allocate",
    "llmlab.tokenization.crf.char_windows(width=<zero>)": "a window of the character alone (documented)",
    "llmlab.tokenization.crf.crf_segment(text=<empty>)": "an empty text is a text: it has no words",
    "llmlab.tokenization.crf.encode(text=<empty>)": "an empty text has no ids",
    "llmlab.tokenization.crf.encode(vocab=<empty>)": "every character is then unknown: UNK (documented)",
    "llmlab.tokenization.crf.tag_ids(words=<empty>)": "an empty sentence has no tags",
}
