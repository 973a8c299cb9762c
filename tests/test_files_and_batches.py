"""The atomic result writer and the batch conventions that every technique package shares."""

import json

import pytest
import torch

from compresslib import batches, files


def test_write_json_round_trips_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "deep" / "results.json"
    files.write_json(path, {"θ0": [1, 2.5, None]})
    assert files.read_json(path) == {"θ0": [1, 2.5, None]}
    assert path.read_text().endswith("\n")
    assert sorted(p.name for p in path.parent.iterdir()) == ["results.json"]


def test_a_failed_write_keeps_the_old_file(tmp_path):
    """A crash mid-write must leave the previous result (not a truncated one) and no temporary file."""
    path = tmp_path / "results.json"
    files.write_json(path, {"round": 1})
    with pytest.raises(TypeError):
        files.write_json(path, {"round": object()})
    assert json.loads(path.read_text()) == {"round": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]
    with pytest.raises(RuntimeError):
        with files.atomic_path(path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert json.loads(path.read_text()) == {"round": 1}


def test_model_inputs_drop_labels_teacher_logits_and_example_indices():
    batch = {"input_ids": torch.ones(2, 3), "attention_mask": torch.ones(2, 3), batches.LABELS_KEY: torch.zeros(2),
             batches.TEACHER_LOGITS_KEY: torch.zeros(2, 2), batches.EXAMPLE_INDEX_KEY: torch.arange(2)}
    assert sorted(batches.model_inputs(batch)) == ["attention_mask", "input_ids"]


def test_logits_of_a_tensor_or_a_model_output():
    class Output:
        logits = torch.ones(1)

    tensor = torch.zeros(2)
    assert batches.logits_of(tensor) is tensor and batches.logits_of(Output()) is Output.logits


def test_split_streams_separates_the_prefixed_stream_and_strips_its_prefix():
    merged = {"input_ids": torch.ones(2, 3), batches.LABELS_KEY: torch.zeros(2),
              batches.TRANSFER_PREFIX + "input_ids": torch.zeros(4, 5),
              batches.TRANSFER_PREFIX + batches.TEACHER_LOGITS_KEY: torch.zeros(4, 2)}
    main, transfer = batches.split_streams(merged)
    assert sorted(main) == ["input_ids", "labels"] and sorted(transfer) == ["input_ids", "teacher_logits"]
    assert transfer["input_ids"].shape == (4, 5) and main["input_ids"].shape == (2, 3)
    assert batches.split_streams({"input_ids": torch.ones(1)}) == ({"input_ids": torch.ones(1)}, {})
