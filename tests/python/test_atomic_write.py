"""tools/atomic_write.py, the tools' one temporary-and-rename writer: the target changes only
once the content is complete, an older target survives a failure, no temporary is ever left
behind, and the temporary is named as the engine names its own (src/io/output_file.h)."""
from __future__ import annotations

import os

import numpy as np
import pytest

from tools.atomic_write import atomic_output, temporary_for, write_bytes_atomically, write_text_atomically
from tools.fcabert_model import read_model_file
from tools.tiny_model import tiny_metadata, write_tiny_model


def leftovers(folder, keep):
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


def test_the_temporary_sits_next_to_the_target(tmp_path):
    assert temporary_for(tmp_path / "out.json") == tmp_path / f".out.json.tmp-{os.getpid()}"


def test_the_target_changes_only_when_the_block_ends(tmp_path):
    target = tmp_path / "result.txt"
    target.write_text("an older result\n")
    with atomic_output(target, text=True) as out:
        out.write("new résumé\n")
        out.flush()
        assert target.read_text() == "an older result\n"
        assert temporary_for(target).read_text(encoding="utf-8") == "new résumé\n"
    assert target.read_text(encoding="utf-8") == "new résumé\n"
    assert leftovers(tmp_path, {"result.txt"}) == []


def test_an_exception_keeps_the_older_target_and_removes_the_temporary(tmp_path):
    target = tmp_path / "result.bin"
    target.write_bytes(b"precious")
    with pytest.raises(KeyboardInterrupt):
        with atomic_output(target) as out:
            out.write(b"half")
            raise KeyboardInterrupt
    assert target.read_bytes() == b"precious"
    assert leftovers(tmp_path, {"result.bin"}) == []
    with pytest.raises(ValueError):
        with atomic_output(tmp_path / "new.bin") as out:
            raise ValueError("stop")
    assert leftovers(tmp_path, {"result.bin"}) == []


def test_text_and_bytes_helpers(tmp_path):
    write_bytes_atomically(tmp_path / "a.bin", b"\x00\xff")
    assert (tmp_path / "a.bin").read_bytes() == b"\x00\xff"
    write_text_atomically(tmp_path / "a.txt", "λ\n")
    assert (tmp_path / "a.txt").read_bytes() == "λ\n".encode("utf-8")
    with pytest.raises(FileNotFoundError):
        write_text_atomically(tmp_path / "missing" / "b.txt", "x")
    write_text_atomically(tmp_path / "made" / "deeper" / "b.txt", "x", parents=True)
    assert (tmp_path / "made" / "deeper" / "b.txt").read_text() == "x"
    assert leftovers(tmp_path, {"a.bin", "a.txt", "made", "missing"}) == []


def test_model_files_are_written_through_it(tmp_path):
    # tools/fcabert_model.py writes through the helper: the file reads back, nothing is left.
    path = tmp_path / "tiny.fcab"
    metadata = tiny_metadata(["the", "movie"], layers=1, hidden_size=8, num_heads=2, intermediate_size=16,
                             max_len=16, clusters=1, pooling="weighted",
                             provenance={"source": "tests/python/test_atomic_write.py"})
    write_tiny_model(path, metadata, lambda name, shape: np.zeros(shape))
    assert read_model_file(path)[0]["provenance"]["source"] == "tests/python/test_atomic_write.py"
    assert leftovers(tmp_path, {"tiny.fcab"}) == []
