"""The adversarial corpus: hostile submissions, each with the outcome it must get (tests/adversarial/test_corpus.py).

One module per kind of attack (``reference``, ``reads``, ``patching``, ``lying``, ``ipython``, ``forged``,
``oracle``, ``cells``, ``crashes``, ``bombs``, ``leftovers``, ``honest``), each a list ``ENTRIES`` of
:class:`~adversarial.attack.Attack`: the assignment, how the submission is built from the complete
solution, and the expected outcome (the score of every test cell, or the reason it is not graded).
"""
