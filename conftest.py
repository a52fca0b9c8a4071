"""Scores check cells when pytest runs notebooks with --nbval-lax (see llmlab/course/scoring.py)."""
from llmlab.course.scoring import pytest_addoption, pytest_configure  # noqa: F401
