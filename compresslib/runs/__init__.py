"""Reference experiments: ``python -m compresslib.runs <name> --profile quick|cpu|gpu``.

Each run writes ``runs/<name>/results.json`` (with provenance), PNG plots, and the fixtures that the
graded notebooks compare against. A rerun skips the parts whose result files already exist.
"""
