"""The student's JupyterLab: a Validate that fails on any cell that errored or timed out
(:mod:`~compresslib.student.validate`), and a save hook that keeps progress bars as text
(:mod:`~compresslib.student.widget_outputs`). Shipped in the student kit; the kit's Jupyter settings
enable them."""
