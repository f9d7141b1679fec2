"""Inline sources (DESIGN §3): `code` text and `base64` of Python text or of a zip / tar archive."""

from __future__ import annotations

import base64
import gzip
import io
import os
import tarfile
import zipfile
from pathlib import Path
from types import SimpleNamespace
from typing import Optional

import pytest

from wrapper.errors import SourceError
from wrapper.sources import SourceTree, materialise_source
from wrapper.sources.inline import inline_file_name
from wrapper.sources.settings import SourceSettings

CODE = "def handler(context, event):\n    return 'hi'\n"


def spec(
    code: Optional[str] = None, b64: Optional[str] = None, code_src: Optional[str] = None
) -> SimpleNamespace:
    return SimpleNamespace(code=code, base64=b64, code_src=code_src)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def zip_bytes(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return buffer.getvalue()


def tar_bytes(files: dict[str, str], mode: str = "w:gz") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as tf:  # type: ignore[call-overload]
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tf.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def files_under(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): p.read_text()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def leftovers(cache: Path) -> list[str]:
    """Anything in the cache that is not a finished tree (temporary folders start with a dot)."""
    if not cache.exists():
        return []
    return [p.name for p in cache.rglob(".*")]


# --- code -----------------------------------------------------------------------------------


def test_code_is_written_as_main_py(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    tree = materialise_source(spec(code=CODE), settings=SourceSettings(cache_dir=cache))
    assert isinstance(tree, SourceTree)
    assert tree.single_file == "main.py"
    assert files_under(tree.root) == {"main.py": CODE}
    assert tree.root.resolve().is_relative_to(cache.resolve())


def test_code_keeps_non_ascii_text(tmp_path: Path) -> None:
    code = "GREETING = 'héllo ✓'\n"
    tree = materialise_source(
        spec(code=code), settings=SourceSettings(cache_dir=tmp_path / "cache")
    )
    assert (tree.root / "main.py").read_bytes() == code.encode("utf-8")


def test_empty_code_is_still_code(tmp_path: Path) -> None:
    tree = materialise_source(spec(code=""), settings=SourceSettings(cache_dir=tmp_path / "cache"))
    assert tree.single_file == "main.py"
    assert (tree.root / "main.py").read_text() == ""


@pytest.mark.parametrize(
    ("code_src", "name"),
    [
        (None, "main.py"),
        ("", "main.py"),
        ("func.py", "func.py"),
        ("src/func.py", "src/func.py"),
        ("./src/pkg/func.py", "src/pkg/func.py"),
        ("/abs/path/func.py", "func.py"),
        ("../outside/func.py", "func.py"),
        ("src/../../func.py", "func.py"),
        ("https://user:pw@host/repo/func.py", "func.py"),
        ("s3://bucket/deep/key/func.py", "func.py"),
        ("git+https://host/org/repo#main:src/func.py", "func.py"),
        ("file:///srv/code/func.py", "func.py"),
        ("src/func.txt", "main.py"),
        ("src/", "main.py"),
        ("https://host/archive.zip", "main.py"),
    ],
)
def test_inline_file_name(code_src: Optional[str], name: str) -> None:
    assert inline_file_name(code_src) == name


def test_code_under_the_relative_path_code_src_names(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    tree = materialise_source(
        spec(code=CODE, code_src="src/func.py"), settings=SourceSettings(cache_dir=cache)
    )
    assert files_under(tree.root) == {"src/func.py": CODE}
    assert tree.single_file == "src/func.py"


@pytest.mark.parametrize(
    "code_src", ["https://host/x/func.py", "/etc/func.py", "../../func.py", "a/../../func.py"]
)
def test_uri_absolute_or_dotdot_code_src_only_gives_its_basename(
    tmp_path: Path, code_src: str
) -> None:
    cache = tmp_path / "cache"
    tree = materialise_source(
        spec(code=CODE, code_src=code_src), settings=SourceSettings(cache_dir=cache)
    )
    assert files_under(tree.root) == {"func.py": CODE}
    assert tree.single_file == "func.py"
    # nothing was written outside the cache
    assert not (tmp_path / "func.py").exists()
    assert not (tmp_path.parent / "func.py").exists()


def test_same_code_reuses_the_folder_different_code_does_not(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = materialise_source(spec(code=CODE), settings=SourceSettings(cache_dir=cache))
    stamp = (first.root / "main.py").stat().st_mtime_ns
    again = materialise_source(spec(code=CODE), settings=SourceSettings(cache_dir=cache))
    other = materialise_source(
        spec(code=CODE + "# changed\n"), settings=SourceSettings(cache_dir=cache)
    )
    renamed = materialise_source(
        spec(code=CODE, code_src="other.py"), settings=SourceSettings(cache_dir=cache)
    )
    assert again.root == first.root
    assert (again.root / "main.py").stat().st_mtime_ns == stamp
    assert other.root != first.root
    assert renamed.root not in (first.root, other.root)
    assert (first.root / "main.py").read_text() == CODE  # untouched by the others


def test_code_wins_over_code_src(tmp_path: Path) -> None:
    """Inline code with a code_src (the original path) does not read code_src."""
    tree = materialise_source(
        spec(code=CODE, code_src=str(tmp_path / "missing" / "func.py")),
        settings=SourceSettings(cache_dir=tmp_path / "c"),
    )
    assert files_under(tree.root) == {"func.py": CODE}


# --- base64 of text -------------------------------------------------------------------------


def test_base64_of_python_text(tmp_path: Path) -> None:
    tree = materialise_source(
        spec(b64=b64(CODE.encode())), settings=SourceSettings(cache_dir=tmp_path / "cache")
    )
    assert tree.single_file == "main.py"
    assert files_under(tree.root) == {"main.py": CODE}


def test_base64_with_line_breaks_is_accepted(tmp_path: Path) -> None:
    long_code = CODE + "# " + "x" * 300 + "\n"
    wrapped = base64.encodebytes(long_code.encode()).decode("ascii")  # 76-column lines
    assert "\n" in wrapped.strip()
    tree = materialise_source(
        spec(b64=wrapped), settings=SourceSettings(cache_dir=tmp_path / "cache")
    )
    assert (tree.root / "main.py").read_text() == long_code


def test_base64_text_under_code_src_path(tmp_path: Path) -> None:
    """DigitalHub sends base64 together with the original path."""
    tree = materialise_source(
        spec(b64=b64(CODE.encode()), code_src="src/func.py"),
        settings=SourceSettings(cache_dir=tmp_path / "cache"),
    )
    assert files_under(tree.root) == {"src/func.py": CODE}
    assert tree.single_file == "src/func.py"


def test_code_and_base64_of_the_same_text_share_the_tree(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    from_code = materialise_source(spec(code=CODE), settings=SourceSettings(cache_dir=cache))
    from_b64 = materialise_source(
        spec(b64=b64(CODE.encode())), settings=SourceSettings(cache_dir=cache)
    )
    assert from_code.root == from_b64.root


# --- base64 of archives ---------------------------------------------------------------------

ARCHIVE_FILES = {"main.py": CODE, "helpers/__init__.py": "", "helpers/util.py": "X = 1\n"}


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda f: zip_bytes(f), id="zip"),
        pytest.param(lambda f: tar_bytes(f, "w:gz"), id="tar.gz"),
        pytest.param(lambda f: tar_bytes(f, "w"), id="tar"),
        pytest.param(lambda f: tar_bytes(f, "w:bz2"), id="tar.bz2"),
        pytest.param(lambda f: tar_bytes(f, "w:xz"), id="tar.xz"),
    ],
)
def test_base64_of_an_archive_is_unpacked(tmp_path: Path, make: object) -> None:
    data = make(ARCHIVE_FILES)  # type: ignore[operator]
    cache = tmp_path / "cache"
    tree = materialise_source(spec(b64=b64(data)), settings=SourceSettings(cache_dir=cache))
    assert files_under(tree.root) == ARCHIVE_FILES
    assert tree.single_file == "main.py"  # the only top-level module
    assert tree.root.resolve().is_relative_to(cache.resolve())
    assert leftovers(cache) == []


def test_base64_archive_ignores_code_src_name(tmp_path: Path) -> None:
    data = zip_bytes({"a.py": "A = 1\n", "b.py": "B = 2\n"})
    tree = materialise_source(
        spec(b64=b64(data), code_src="zip+s3://bucket/func.zip"),
        settings=SourceSettings(cache_dir=tmp_path / "cache"),
    )
    assert files_under(tree.root) == {"a.py": "A = 1\n", "b.py": "B = 2\n"}
    assert tree.single_file is None  # two modules: no single file


def test_base64_archive_with_one_top_folder_is_rooted_inside_it(tmp_path: Path) -> None:
    data = zip_bytes({"func/handler.py": CODE, "func/lib.py": "L = 1\n"})
    tree = materialise_source(
        spec(b64=b64(data)), settings=SourceSettings(cache_dir=tmp_path / "cache")
    )
    assert tree.root.name == "func"
    assert files_under(tree.root) == {"handler.py": CODE, "lib.py": "L = 1\n"}
    assert tree.single_file is None


def test_same_archive_twice_reuses_the_tree(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    data = b64(zip_bytes(ARCHIVE_FILES))
    first = materialise_source(spec(b64=data), settings=SourceSettings(cache_dir=cache))
    stamp = (first.root / "main.py").stat().st_mtime_ns
    second = materialise_source(spec(b64=data), settings=SourceSettings(cache_dir=cache))
    assert second.root == first.root
    assert (second.root / "main.py").stat().st_mtime_ns == stamp


# --- bad base64 -----------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["not base64 at all!", "YWJj$", "YWJjZA", "\u00e9\u00e9"])
def test_invalid_base64_is_a_source_error_naming_the_field(tmp_path: Path, text: str) -> None:
    cache = tmp_path / "cache"
    with pytest.raises(SourceError, match=r"function\.base64") as info:
        materialise_source(spec(b64=text), settings=SourceSettings(cache_dir=cache))
    assert "not valid base64" in str(info.value)
    assert leftovers(cache) == []


@pytest.mark.parametrize(
    "data",
    [b"\xff\xfe\x00\x01binary", bytes(range(256)), b"\x89PNG\r\n\x1a\n" + b"\x00" * 64],
    ids=["junk", "all-bytes", "png"],
)
def test_base64_of_binary_non_archive_is_a_source_error(tmp_path: Path, data: bytes) -> None:
    cache = tmp_path / "cache"
    with pytest.raises(SourceError, match=r"function\.base64"):
        materialise_source(spec(b64=b64(data)), settings=SourceSettings(cache_dir=cache))
    assert not (cache / "inline").exists() or list((cache / "inline").iterdir()) == []


def test_base64_of_gzip_that_is_not_a_tar_names_the_field(tmp_path: Path) -> None:
    """A gzip of a .py file (not a tar) is binary non-archive data: the error names the field.

    Found: the gzip magic routes it to the tar unpacker, whose message ("cannot unpack
    archive: ...") does not say that function.base64 is what could not be used.
    """
    cache = tmp_path / "cache"
    with pytest.raises(SourceError) as info:
        materialise_source(
            spec(b64=b64(gzip.compress(CODE.encode()))), settings=SourceSettings(cache_dir=cache)
        )
    assert "function.base64" in str(info.value)


def test_base64_of_a_broken_archive_leaves_nothing_behind(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    data = zip_bytes(ARCHIVE_FILES)[:-30]  # truncated central directory
    with pytest.raises(SourceError):
        materialise_source(spec(b64=b64(data)), settings=SourceSettings(cache_dir=cache))
    assert leftovers(cache) == []
    archives = cache / "archive"
    assert not archives.exists() or list(archives.iterdir()) == []


def test_inline_tree_is_readable_by_others(tmp_path: Path) -> None:
    tree = materialise_source(
        spec(code=CODE), settings=SourceSettings(cache_dir=tmp_path / "cache")
    )
    assert os.stat(tree.root).st_mode & 0o777 == 0o755
