"""Diagrams for the notebooks, drawn with matplotlib (offline, inline in JupyterLab), from the real numbers
of a run wherever the picture allows: the cache tensor as it fills, the merges BPE actually made on a word,
the timetable a pipeline actually followed.

``draw`` holds the few primitives every diagram uses (a canvas, boxes, arrows, a grid of cells); each other
module draws one topic's pictures.
"""
