"""Files that appear complete or not at all: the one temporary-and-rename writer of the tools.

The content goes to a temporary ".NAME.tmp-PID" in the same folder (so the rename never
crosses file systems, and two processes never share a temporary), which replaces NAME only
once it is written and closed. Until then NAME is untouched: an older NAME stays as it was.
If writing fails, or the process is interrupted by an exception (KeyboardInterrupt included),
the temporary is removed. The C++ side's equivalent is src/io/output_file.h.

  with atomic_output(path) as out:          # binary; or atomic_output(path, text=True)
      out.write(...)                        # or torch.save(state, out)
  write_text_atomically(path, text)         # parents=True: create missing folders first
  write_bytes_atomically(path, data)
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator


def temporary_for(path: str | os.PathLike) -> Path:
    """The temporary that stands in for `path` while it is written."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


@contextmanager
def atomic_output(path: str | os.PathLike, text: bool = False, encoding: str = "utf-8") -> Iterator[IO]:
    """Opens the temporary of `path` for writing (binary, or text in `encoding`) and renames it
    over `path` when the block ends without an exception; otherwise removes it."""
    path = Path(path)
    temp = temporary_for(path)
    try:
        with open(temp, "w" if text else "wb", **({"encoding": encoding} if text else {})) as out:
            yield out
        os.replace(temp, path)
    finally:
        if temp.exists():
            temp.unlink()


def write_text_atomically(path: str | os.PathLike, text: str, encoding: str = "utf-8",
                          parents: bool = False) -> None:
    """Writes `text` to `path`; parents=True first creates the folders that are missing."""
    if parents:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path, text=True, encoding=encoding) as out:
        out.write(text)


def write_bytes_atomically(path: str | os.PathLike, data: bytes) -> None:
    with atomic_output(path) as out:
        out.write(data)
