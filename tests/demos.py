"""What the demo tests share: an exercise not done yet, and the line ``yours`` prints about who ran."""


def stub(*args, **kwargs):
    """A learner's function before they write it."""
    raise NotImplementedError


def said(capsys, name: str, who: str) -> None:
    """The demo announced that ``who`` ("yours" or llmlab's reference) ran ``name``."""
    out = capsys.readouterr().out
    assert f"▶ {name}: {who}" in out, out
