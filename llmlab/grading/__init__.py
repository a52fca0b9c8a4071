"""The grader: ``check_*`` functions, one module per notebook, built on ``core``.

A check cell in a notebook calls e.g. ``language_models.check_count_ngrams(count_ngrams)``. The
check prints one ``✅ <id>: N checks passed`` line, or raises :class:`ExerciseFailure`, which
Jupyter and pytest show as a single ``❌ <id>: <what> … Hint: <how>`` line.
"""
from llmlab.grading.core import Check, ExerciseFailure

__all__ = ["Check", "ExerciseFailure"]
