"""Saved notebooks without widget views, so that reopening one never shows "model not found".

A progress bar (tqdm in a notebook) is a widget: its output holds a widget *view* that points to a
model living in the kernel, plus a plain-text copy of the bar. Once the kernel is gone (or the bar
closed itself, as ``leave=False`` bars do), JupyterLab cannot find the model and shows "Error
displaying widget: model not found" for each saved view. Keeping only the text copy shows the bar's
last state instead.

* :func:`strip_widgets` does it to a notebook (the walkthroughs, when they are built);
* :func:`pre_save_hook` does it to every notebook JupyterLab saves (the student kit sets
  ``ContentsManager.pre_save_hook`` to it). Live bars keep working; only the file loses the views.
"""

from __future__ import annotations

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def strip_widgets(nb: dict) -> int:
    """Remove widget views from ``nb``'s outputs (in place), keeping each output's other formats and
    dropping outputs left empty, and the saved widget state (useless without views) from its metadata;
    return how many views were removed. ``nb`` is a notebook as a dict (or an nbformat NotebookNode)."""
    nb.get("metadata", {}).pop("widgets", None)
    removed = 0
    for cell in nb.get("cells", []):
        outputs = cell.get("outputs")
        if not outputs:
            continue
        kept = []
        for output in outputs:
            data = output.get("data") or {}
            if WIDGET_VIEW in data:
                removed += 1
                data.pop(WIDGET_VIEW)
                if not data:
                    continue
            kept.append(output)
        cell["outputs"] = kept
    return removed


def pre_save_hook(model: dict, **_) -> None:
    """jupyter_server's ``ContentsManager.pre_save_hook``: strip widget views from a notebook being saved."""
    if model.get("type") == "notebook" and isinstance(model.get("content"), dict):
        strip_widgets(model["content"])
