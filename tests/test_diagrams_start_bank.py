"""The diagrams of notebooks 00 and 13 (llmlab.diagrams.start_here, llmlab.diagrams.interview), on real inputs: a
Chinese and English sentence's UTF-8 bytes, and the interview bank's own links. Each returns a Figure, and bad
arguments are refused with a TypeError or a ValueError that names them."""
import matplotlib

matplotlib.use("Agg")

import collections  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from llmlab import interview  # noqa: E402
from llmlab.diagrams import interview as I  # noqa: E402
from llmlab.diagrams import start_here as S  # noqa: E402


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_utf8_bytes_draws_one_cell_per_byte():
    text = "大模型 runs fast!"
    fig = S.utf8_bytes(text)
    assert isinstance(fig, Figure)
    labels = [t.get_text() for t in fig.axes[0].texts]
    assert [b for b in labels if len(b) == 2 and all(c in "0123456789abcdef" for c in b)] == \
        [f"{b:02x}" for b in text.encode("utf-8")]
    assert fig.axes[0].get_title() == f"{len(text)} characters, {len(text.encode('utf-8'))} bytes in UTF-8"


@pytest.mark.parametrize("text, exc, msg", [
    (b"bytes", TypeError, "text must be a str"),
    ("", ValueError, "1 to 48 bytes"),
    ("模" * 17, ValueError, "got 51 bytes"),
])
def test_utf8_bytes_refuses_bad_text(text, exc, msg):
    with pytest.raises(exc, match=msg):
        S.utf8_bytes(text)


def test_bank_map_counts_the_real_links():
    links = collections.defaultdict(collections.Counter)
    for q in interview.load_bank().values():
        links[q.topic][q.link.split("_")[0]] += 1
    fig = I.bank_map({t: dict(links[t]) for t in interview.TOPICS})
    texts = fig.axes[0].texts
    assert set(interview.TOPICS) <= {t.get_text() for t in texts}
    counts = [int(t.get_text()) for t in texts if t.get_rotation() == 0 and t.get_text().isdigit()]
    assert sum(counts) == len(interview.load_bank())  # every question counted once, in its topic's row


@pytest.mark.parametrize("links, exc, msg", [
    ([("quantization", 3)], TypeError, "links must be a dict"),
    ({}, ValueError, "links is empty"),
    ({"quantization": {}}, ValueError, "holds no notebook"),
    ({"quantization": {"09": -1}}, ValueError, r"links\['quantization'\] must hold counts"),
    ({"quantization": {9: 1}}, TypeError, "must be str"),
])
def test_bank_map_refuses_bad_links(links, exc, msg):
    with pytest.raises(exc, match=msg):
        I.bank_map(links)
