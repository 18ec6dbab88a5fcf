"""Files, once for the whole package: atomic writes, json, and HDF5 helpers.

Every write goes to a temporary file beside the target and is moved into place with ``os.replace``, so
a crash never leaves a half-written file under the final name. HDF5 datasets are written with
``track_times=False`` so the same content gives the same bytes (builds are compared byte for byte).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import h5py
import numpy as np

STRING = h5py.string_dtype("utf-8")


class AtomicTarget:
    """A temporary file beside ``path`` (``.{name}.{random}.tmp``, the one temporary-name convention) for
    writers that stay open across calls: :meth:`commit` moves it onto ``path``, :meth:`discard` removes it.
    ``keep_ending`` adds the target's ending (``.tmp.ipynb``) for tools that choose a format by it."""

    def __init__(self, path: str | os.PathLike, keep_ending: bool = False):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        suffix = ".tmp" + (self.path.suffix if keep_ending else "")
        handle, temporary = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=suffix, dir=self.path.parent)
        os.close(handle)
        self.temporary = Path(temporary)

    def commit(self) -> None:
        os.replace(self.temporary, self.path)

    def discard(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.temporary)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, keep_ending: bool = False) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; move it onto ``path`` only on success."""
    target = AtomicTarget(path, keep_ending)
    try:
        yield target.temporary
        target.commit()
    except BaseException:
        target.discard()
        raise


def write_json(path: str | os.PathLike, value, *, indent: int | None = None, allow_nan: bool = False) -> None:
    """Atomically write ``value`` as json (utf-8, keys in insertion order; NaN only when ``allow_nan``,
    for metrics, where an undefined score is NaN rather than an error)."""
    # json.dumps, not json.dump: only the one-shot path uses the C encoder (several times faster).
    text = json.dumps(value, ensure_ascii=False, indent=indent, allow_nan=allow_nan)
    with atomic_path(path) as temporary, open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Atomically write ``data`` (an encoded image, a json text with its own formatting)."""
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)


def file_sha256(path: str | os.PathLike) -> str:
    """The sha256 of a file's bytes, read in 1 MiB blocks (checksums of shipped weights, fingerprints)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_json(path: str | os.PathLike):
    """Load a json file; a missing or broken file is an error that names it."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: file not found") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid json ({error})") from error


@contextlib.contextmanager
def atomic_h5(path: str | os.PathLike) -> Iterator[h5py.File]:
    """An h5py file opened on a temporary path, moved onto ``path`` when the block ends cleanly.

    ``track_order=False`` and datasets created through :func:`put` keep no timestamps, so equal
    content gives equal bytes.
    """
    with atomic_path(path) as temporary, h5py.File(temporary, "w", libver="earliest", track_order=False) as handle:
        yield handle


def put(handle: h5py.File, key: str, array) -> None:
    """Create one dataset without timestamps (byte-reproducible files)."""
    array = np.asarray(array) if not isinstance(array, np.ndarray) else array
    handle.create_dataset(key, data=array, track_times=False)


def strings(values: Sequence[str]) -> np.ndarray:
    """A variable-length utf-8 string array for h5py."""
    return np.array(list(values), dtype=object).astype(STRING) if len(values) else np.zeros(0, STRING)


def decode_strings(values) -> list[str]:
    """An h5py string dataset (or its array) as ``str``: h5py hands back bytes or str by version."""
    values = values[()] if isinstance(values, h5py.Dataset) else values
    return [value.decode("utf-8") if isinstance(value, bytes) else str(value) for value in values]
