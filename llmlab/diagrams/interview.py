"""Diagram of notebook 13 (interview bank): where the bank's questions are taught.

* ``bank_map``: one row per topic, one column per notebook, each cell the number of questions of that topic
  whose "taught in" link points to that notebook, shaded by the count: the notebooks to reread for a topic.
"""
from __future__ import annotations

from collections.abc import Mapping

from llmlab.diagrams.draw import canvas, cells, optional_title

SHADES = ("#ffffff", "#dbe9f6", "#a6cbe6", "#5a9bd0", "#2b6aa6")  # 0, 1-2, 3-5, 6-9, 10 or more questions
STEPS = (1, 3, 6, 10)


def _shade(count: int) -> str:
    return SHADES[sum(count >= s for s in STEPS)]


def bank_map(links: Mapping[str, Mapping[str, int]], title: str | None = None):
    """``links`` {topic: {notebook label: questions}}, e.g. {"quantization": {"09": 20, "13": 2}}: a grid of
    topics (rows, in the mapping's order) by notebooks (columns, sorted), each cell the count. Returns the Figure.
    """
    if not isinstance(links, Mapping) or not all(isinstance(v, Mapping) for v in links.values()):
        raise TypeError(f"links must be a dict {{topic: {{notebook: count}}}}, got {type(links).__name__}")
    if not links:
        raise ValueError("links is empty: pass the counts of at least one topic")
    for topic, row in links.items():
        if not isinstance(topic, str) or not all(isinstance(k, str) for k in row):
            raise TypeError("links' topics and notebook labels must be str")
        if not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in row.values()):
            raise ValueError(f"links[{topic!r}] must hold counts (ints >= 0), got {dict(row)}")
    title = optional_title(title)
    notebooks = sorted({nb for row in links.values() for nb in row})
    if not notebooks:
        raise ValueError("links holds no notebook: every topic's dict is empty")
    topics = list(links)
    left = max(len(t) for t in topics) * 0.24 + 0.5
    fig, ax = canvas(left + len(notebooks) + 0.5, len(topics) + 2.2,
                     title or "questions per topic and the notebook that teaches them", scale=0.42)
    counts = [[links[t].get(nb, 0) for nb in notebooks] for t in topics]
    cells(ax, [[_shade(c) for c in row] for row in counts], x=left, y=0.2,
          labels=[[str(c) if c else "" for c in row] for row in counts], fontsize=7)
    for r, topic in enumerate(topics):
        ax.text(left - 0.2, 0.2 + len(topics) - r - 0.5, topic, ha="right", va="center", fontsize=7)
    for c, nb in enumerate(notebooks):
        ax.text(left + c + 0.5, len(topics) + 0.55, nb, ha="center", va="center", fontsize=7, rotation=90)
    return fig
