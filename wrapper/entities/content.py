"""What `project.log_*` keeps, as one stream and a file name: a local file, a local folder
(zipped whole), bytes, or a DataFrame (written as a file first)."""

from __future__ import annotations

import contextlib
import io
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, Optional, Union

from wrapper.entities.frames import is_dataframe, write_frame
from wrapper.errors import SpecError

Source = Union[str, Path]


@contextlib.contextmanager
def content_stream(
    source: Optional[Source], data: Any, name: str, field: str, extension: Optional[str] = None
) -> Iterator[tuple[BinaryIO, str]]:
    """The stream and file name of what is logged: a file (its own name), a folder (as
    `<folder>.zip`), bytes (`data.bin`), or a DataFrame (`<name>.parquet`, or `.csv` with
    `extension="csv"` or without pyarrow)."""
    if source is not None:
        path = Path(source)
        if path.is_dir():
            with tempfile.TemporaryDirectory(prefix="fn-wrapper-folder-") as folder:
                archive = Path(folder, f"{path.name or 'folder'}.zip")
                zip_folder(path, archive)
                with _opened(archive, field) as stream:
                    yield stream, archive.name
        else:
            with _opened(path, field) as stream:
                yield stream, path.name
    elif isinstance(data, (bytes, bytearray, memoryview)):
        yield io.BytesIO(data), "data.bin"
    elif is_dataframe(data):
        with tempfile.TemporaryDirectory(prefix="fn-wrapper-frame-") as folder:
            path = write_frame(data, Path(folder), name, extension)
            with _opened(path, field) as stream:
                yield stream, path.name
    else:
        raise SpecError(f"{field}: data must be bytes or a DataFrame, not {type(data).__name__}")


def zip_folder(folder: Path, archive: Path) -> None:
    """The files under `folder` (paths relative to it; links followed) into `archive`."""
    import zipfile

    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, strict_timestamps=False) as packed:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                packed.write(path, path.relative_to(folder).as_posix())


def _opened(path: Path, field: str) -> BinaryIO:
    try:
        return path.open("rb")
    except OSError as exc:
        raise SpecError(f"{field}: cannot read {path}: {exc.strerror or exc}") from None
