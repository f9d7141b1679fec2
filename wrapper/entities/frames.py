"""DataFrames in and out of entities: content read with pandas in the formats DigitalHub 0.15
reads (its pandas reader: csv, parquet, json, xls/xlsx, and txt as csv), and a DataFrame
written as a file. pandas is imported only here, and only when a frame is read."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, BinaryIO, Optional, Union

from wrapper.errors import SpecError

FORMATS = ("csv", "parquet", "json", "xlsx", "xls", "txt", "file")
"""The `file_format` values as_df accepts (DigitalHub's FileExtensions)."""

_SUFFIXES = {".csv": "csv", ".tsv": "csv", ".parquet": "parquet", ".pq": "parquet"}
_SUFFIXES.update({".json": "json", ".xlsx": "xlsx", ".xls": "xls", ".txt": "txt"})
_CONTENT_TYPES = {
    "application/json": "json",
    "application/vnd.apache.parquet": "parquet",
    "application/x-parquet": "parquet",
}
_READERS = {"csv": "read_csv", "txt": "read_csv", "file": "read_csv", "json": "read_json"}
_READERS.update({"parquet": "read_parquet", "xlsx": "read_excel", "xls": "read_excel"})
SEEKABLE = ("parquet", "xlsx", "xls")
"""Formats pandas reads from a file it can seek in, not from a stream."""


def frame_format(
    key: str, asked: Optional[str], kept: Optional[str], filename: str, content_type: str = ""
) -> str:
    """The format to read: the one asked for, else the one the entity was kept in, else its
    file name's suffix, else (a remote file) its content type (any text/* is csv, as
    DigitalHub's http store has it)."""
    form = (asked or kept or _SUFFIXES.get(Path(filename).suffix.lower()) or "").lower()
    if not form and content_type:
        form = _CONTENT_TYPES.get(content_type) or (
            "csv" if content_type.startswith("text/") else ""
        )
    if not form:
        raise SpecError(
            f"{key}: cannot tell the format of {filename!r}: pass file_format= "
            f"({', '.join(FORMATS[:5])})"
        )
    if form not in _READERS:
        raise SpecError(f"{key}: cannot read format {form!r} as a DataFrame ({', '.join(FORMATS)})")
    return form


def read_frame(
    key: str, form: str, source: Union[BinaryIO, Path], filename: str, options: dict[str, Any]
) -> Any:
    """`source` (a stream, or a file for the SEEKABLE formats) read by pandas; `options` go
    to its reader. A `.tsv` file is tab-separated unless `sep` says otherwise."""
    pandas = pandas_module(key)
    if Path(filename).suffix.lower() == ".tsv":
        options = {"sep": "\t", **options}
    return getattr(pandas, _READERS[form])(source, **options)


def concat_frames(key: str, frames: list[Any]) -> Any:
    """Frames read from the files of a folder, one after the other (index renumbered)."""
    if len(frames) == 1:
        return frames[0]
    return pandas_module(key).concat(frames, ignore_index=True)


def pandas_module(key: str) -> Any:
    try:
        return importlib.import_module("pandas")
    except ImportError:
        raise SpecError(f"{key}: as_df() needs pandas: pip install 'fn-wrapper[data]'") from None


def is_dataframe(value: Any) -> bool:
    """A pandas DataFrame, told without importing pandas."""
    return type(value).__name__ == "DataFrame" and type(value).__module__.startswith("pandas")


def write_frame(frame: Any, folder: Path, name: str, extension: Optional[str] = None) -> Path:
    """A DataFrame as `<name>.<extension>` in `folder` (index dropped, as DigitalHub writes
    it): Parquet by default when pyarrow is installed, else CSV."""
    if extension is None:
        import importlib.util

        extension = "parquet" if importlib.util.find_spec("pyarrow") is not None else "csv"
    if extension not in ("parquet", "csv"):
        raise SpecError(f"extension {extension!r}: a DataFrame is written as parquet or csv")
    path = folder / f"{name}.{extension}"
    if extension == "parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return path
