"""Catalogued common mistakes, one module per notebook.

Each module has ``MUTANTS``: a list of ``(check_name, wrong_function, hint_fragment)``. The check named
must reject the wrong function with a message containing ``hint_fragment``: the hint meant for that
mistake, not just any failure.
"""
