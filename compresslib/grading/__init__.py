"""Grading (instructor kit only, never shipped to students): fixtures and their recorders, trusted
judges and the oracle, the nbgrader preprocessors that score from the hidden tests' reports, and the
bubblewrap sandbox and executor that run submissions.

One module per job: :mod:`~compresslib.grading.fixtures` (the one fixture folder and schema),
:mod:`~compresslib.grading.record` (recorders, ``python -m compresslib.grading.record``),
:mod:`~compresslib.grading.judging` (scoring a report), one judge module per notebook
(:mod:`~compresslib.grading.soft_targets`, ...), :mod:`~compresslib.grading.oracle` (stand-ins' answers),
:mod:`~compresslib.grading.nbgrader_plugins`, :mod:`~compresslib.grading.sandbox`,
:mod:`~compresslib.grading.execute`, :mod:`~compresslib.grading.closed_forms`.
"""
