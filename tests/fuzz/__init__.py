"""Fuzzing llmlab's public API with bad arguments.

The project's rule: bad input to a public function raises ``TypeError`` (wrong type) or ``ValueError``
(wrong value) with a message that names the argument. This package measures how far the API is from it:

* ``api``: the public callables (every public function and class of llmlab's modules, less the grader and
  the course tools);
* ``call``, ``calls`` and ``calls_*``: one valid call per callable, plus one method call for the important
  classes, built from ``fixtures`` (tiny tensors, models and files);
* ``bad``: the bad values that replace one argument of a valid call at a time;
* ``runner`` and ``worker``: each bad call in a worker process (started from a fork server that ``preload``
  prepares), under a time and a memory limit, and its outcome: clear, unclear, other_error, accepted, hang
  or crash;
* ``expectations``, ``known.json`` and ``accepted``: the ratchet of ``tests/test_fuzz.py``: what is not clear
  today, and the bad-looking values that are in fact fine;
* ``python -m tests.fuzz``: the counts, the worst offenders, and ``--update`` to rewrite ``known.json``.
"""
