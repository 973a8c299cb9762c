"""Reference experiments: ``python -m compresslib.runs <name> --profile quick|cpu|gpu``.

Every run follows one skeleton (:mod:`~compresslib.runs.runner`): a typed profile whose fields carry
their help (:mod:`~compresslib.runs.hparams`), its files at one place each (:mod:`~compresslib.runs.paths`),
claims computed by :mod:`compresslib.stats` (:mod:`~compresslib.runs.claims`), tables and plots from
``results.json`` alone (:mod:`~compresslib.runs.report`), and the README's result sections generated from
``docs/results/<run>/results.json`` (:mod:`~compresslib.runs.readme`). A rerun skips the parts whose result
files already exist.
"""
