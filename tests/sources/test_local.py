"""Local sources (DESIGN §3): `.py` files and folders in place, local archives, file:// URIs,
refused schemes, and the layout rule for unpacked archives."""

from __future__ import annotations

import io
import os
import tarfile
import zipfile
from pathlib import Path
from types import SimpleNamespace
from typing import Optional
from urllib.parse import quote

import pytest

from wrapper.errors import SourceError
from wrapper.sources import SourceTree, materialise_source
from wrapper.sources.layout import archive_tree
from wrapper.sources.settings import SourceSettings
from wrapper.sources.uri import redact_uri, uri_scheme

CODE = "def handler(context, event):\n    return 'local'\n"


def src(code_src: Optional[str]) -> SimpleNamespace:
    return SimpleNamespace(code_src=code_src, code=None, base64=None)


def write_files(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    root.mkdir(parents=True, exist_ok=True)
    return root


def write_zip(path: Path, files: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return path


def write_tar(path: Path, files: dict[str, str], mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as tf:  # type: ignore[call-overload]
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tf.addfile(info, io.BytesIO(data))
    return path


def files_under(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): p.read_text()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def file_uri(path: Path) -> str:
    return "file://" + quote(str(path))


# --- .py files and folders, in place ---------------------------------------------------------


def test_py_file_is_used_in_place(tmp_path: Path) -> None:
    code = write_files(tmp_path / "proj", {"func.py": CODE, "other.py": "O = 1\n"})
    cache = tmp_path / "cache"
    tree = materialise_source(src(str(code / "func.py")), settings=SourceSettings(cache_dir=cache))
    assert tree == SourceTree(code.resolve(), single_file="func.py")
    assert not cache.exists()  # nothing copied


def test_relative_py_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_files(tmp_path / "proj" / "src", {"func.py": CODE})
    monkeypatch.chdir(tmp_path / "proj")
    tree = materialise_source(
        src("src/func.py"), settings=SourceSettings(cache_dir=tmp_path / "cache")
    )
    assert tree.root == (tmp_path / "proj" / "src").resolve()
    assert tree.root.is_absolute()
    assert tree.single_file == "func.py"


@pytest.mark.parametrize("suffix", ["", "/"])
def test_folder_is_used_in_place(tmp_path: Path, suffix: str) -> None:
    code = write_files(tmp_path / "proj", {"main.py": CODE, "pkg/__init__.py": ""})
    cache = tmp_path / "cache"
    tree = materialise_source(src(str(code) + suffix), settings=SourceSettings(cache_dir=cache))
    assert tree.root == code.resolve()
    assert files_under(tree.root) == {"main.py": CODE, "pkg/__init__.py": ""}
    assert not cache.exists()


def test_relative_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_files(tmp_path / "proj" / "code", {"main.py": CODE})
    monkeypatch.chdir(tmp_path / "proj")
    tree = materialise_source(src("code"), settings=SourceSettings(cache_dir=tmp_path / "cache"))
    assert tree.root == (tmp_path / "proj" / "code").resolve()


# --- file:// URIs ---------------------------------------------------------------------------


def test_file_uri_to_a_py_file(tmp_path: Path) -> None:
    code = write_files(tmp_path / "proj", {"func.py": CODE})
    tree = materialise_source(
        src(file_uri(code / "func.py")), settings=SourceSettings(cache_dir=tmp_path / "cache")
    )
    assert tree == SourceTree(code.resolve(), single_file="func.py")


def test_file_uri_to_a_folder(tmp_path: Path) -> None:
    code = write_files(tmp_path / "proj", {"main.py": CODE})
    tree = materialise_source(
        src(file_uri(code)), settings=SourceSettings(cache_dir=tmp_path / "cache")
    )
    assert tree.root == code.resolve()


def test_file_uri_with_localhost_upper_case_scheme_and_escapes(tmp_path: Path) -> None:
    code = write_files(tmp_path / "my code", {"func.py": CODE})
    uri = "FILE://localhost" + quote(str(code / "func.py"))
    assert "%20" in uri
    tree = materialise_source(src(uri), settings=SourceSettings(cache_dir=tmp_path / "cache"))
    assert tree == SourceTree(code.resolve(), single_file="func.py")


@pytest.mark.parametrize("uri", ["file://otherhost/x.py", "file://10.0.0.1/srv/code/"])
def test_file_uri_with_a_remote_host_is_refused(uri: str, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="host"):
        materialise_source(src(uri), settings=SourceSettings(cache_dir=tmp_path / "cache"))


# --- local archives -------------------------------------------------------------------------

FILES = {"main.py": CODE, "lib/__init__.py": "", "lib/util.py": "U = 1\n"}


@pytest.mark.parametrize(
    ("name", "writer"),
    [
        ("func.zip", write_zip),
        ("func.tar.gz", write_tar),
        ("func.tgz", write_tar),
        ("func.tar", lambda p, f: write_tar(p, f, "w")),
    ],
)
def test_local_archive_is_unpacked_into_the_cache(
    tmp_path: Path, name: str, writer: object
) -> None:
    archive = writer(tmp_path / name, FILES)  # type: ignore[operator]
    cache = tmp_path / "cache"
    tree = materialise_source(src(str(archive)), settings=SourceSettings(cache_dir=cache))
    assert tree.root.resolve().is_relative_to(cache.resolve())
    assert files_under(tree.root) == FILES
    assert tree.single_file == "main.py"
    assert archive.exists()  # the archive itself is left alone
    assert list(cache.rglob(".*")) == []  # no temporary leftovers


def test_local_archive_through_a_file_uri(tmp_path: Path) -> None:
    archive = write_zip(tmp_path / "func.zip", FILES)
    tree = materialise_source(
        src(file_uri(archive)), settings=SourceSettings(cache_dir=tmp_path / "cache")
    )
    assert files_under(tree.root) == FILES


def test_archive_is_detected_by_content_not_name(tmp_path: Path) -> None:
    archive = write_zip(tmp_path / "bundle.bin", FILES)
    tree = materialise_source(
        src(str(archive)), settings=SourceSettings(cache_dir=tmp_path / "cache")
    )
    assert files_under(tree.root) == FILES


def test_same_archive_content_reuses_the_tree(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first_archive = write_zip(tmp_path / "a.zip", FILES)
    first = materialise_source(src(str(first_archive)), settings=SourceSettings(cache_dir=cache))
    stamp = (first.root / "main.py").stat().st_mtime_ns
    copy = tmp_path / "copy.zip"
    copy.write_bytes(first_archive.read_bytes())
    second = materialise_source(src(str(copy)), settings=SourceSettings(cache_dir=cache))
    assert second.root == first.root
    assert (second.root / "main.py").stat().st_mtime_ns == stamp
    changed = write_zip(tmp_path / "b.zip", {**FILES, "main.py": CODE + "# v2\n"})
    third = materialise_source(src(str(changed)), settings=SourceSettings(cache_dir=cache))
    assert third.root != first.root
    assert (first.root / "main.py").read_text() == CODE


def test_broken_local_archive_is_a_source_error_and_leaves_nothing(tmp_path: Path) -> None:
    archive = tmp_path / "broken.zip"
    archive.write_bytes(write_zip(tmp_path / "ok.zip", FILES).read_bytes()[:-30])
    cache = tmp_path / "cache"
    with pytest.raises(SourceError):
        materialise_source(src(str(archive)), settings=SourceSettings(cache_dir=cache))
    assert list(cache.rglob(".*")) == []
    assert not (cache / "archive").exists() or list((cache / "archive").iterdir()) == []


# --- refused --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content"),
    [("notes.txt", b"hello"), ("func", b"def f(): pass\n"), ("image.png", b"\x89PNG\r\n\x1a\n")],
)
def test_local_non_py_non_archive_file_is_refused(
    tmp_path: Path, name: str, content: bytes
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(SourceError, match=r"not a \.py file") as info:
        materialise_source(src(str(path)), settings=SourceSettings(cache_dir=tmp_path / "cache"))
    assert name in str(info.value)


@pytest.mark.parametrize("form", ["plain", "uri"])
def test_missing_path_is_refused(tmp_path: Path, form: str) -> None:
    missing = tmp_path / "nowhere" / "func.py"
    code_src = str(missing) if form == "plain" else file_uri(missing)
    with pytest.raises(SourceError) as info:
        materialise_source(src(code_src), settings=SourceSettings(cache_dir=tmp_path / "cache"))
    assert "nowhere" in str(info.value)
    assert "no such file or folder" in str(info.value)


@pytest.mark.parametrize("code_src", [None, ""])
def test_no_source_at_all_is_refused(tmp_path: Path, code_src: Optional[str]) -> None:
    with pytest.raises(SourceError, match="no code"):
        materialise_source(src(code_src), settings=SourceSettings(cache_dir=tmp_path / "cache"))


@pytest.mark.parametrize(
    ("code_src", "scheme"),
    [
        ("ftp://user:secret@host/x.py", "ftp"),
        ("sftp://user:secret@host:8022/x.py", "sftp"),
        ("foo+https://token:secret@host/func.zip", "foo+https"),
        ("zip+git+https://oauth2:secret@gitlab.example/org/repo.git#main", "zip+git+https"),
        ("ftp://secret@host/x.py", "ftp"),
    ],
)
def test_unsupported_schemes_are_refused_and_redacted(
    tmp_path: Path, code_src: str, scheme: str
) -> None:
    with pytest.raises(SourceError, match="unsupported scheme") as info:
        materialise_source(src(code_src), settings=SourceSettings(cache_dir=tmp_path / "cache"))
    message = str(info.value)
    assert "secret" not in message
    assert repr(scheme) in message
    assert not (tmp_path / "cache").exists()


def test_redaction_with_an_at_sign_in_the_password(tmp_path: Path) -> None:
    """A raw '@' in a password (urllib takes the *last* '@' as the end of the credentials).

    Found: redact_uri stops at the first '@', so the part of the password after it leaks
    into the error message ("https://***@ss-tail@host/x.py").
    """
    assert redact_uri("https://user:p@ss-tail@host/x.py") == "https://***@host/x.py"
    with pytest.raises(SourceError) as info:
        materialise_source(
            src("ftp://user:p@ss-tail@host/x.py"), settings=SourceSettings(cache_dir=tmp_path / "c")
        )
    assert "ss-tail" not in str(info.value)


@pytest.mark.parametrize(
    ("uri", "redacted"),
    [
        ("https://user:secret@host/x.py", "https://***@host/x.py"),
        ("s3://key@bucket/k.py", "s3://***@bucket/k.py"),
        ("https://host/x.py", "https://host/x.py"),
        ("https://host/path@v1/x.py", "https://host/path@v1/x.py"),  # '@' in the path is kept
        ("relative/path.py", "relative/path.py"),
    ],
)
def test_redact_uri(uri: str, redacted: str) -> None:
    assert redact_uri(uri) == redacted


@pytest.mark.parametrize(
    ("uri", "scheme"),
    [
        ("https://h/x", "https"),
        ("ZIP+HTTPS://h/x.zip", "zip+https"),
        ("file:///x", "file"),
        ("s3://b/k", "s3"),
        ("path/to/file.py", ""),
        ("/abs/file.py", ""),
        ("C:/x.py", ""),
        ("weird:thing", ""),
    ],
)
def test_uri_scheme(uri: str, scheme: str) -> None:
    assert uri_scheme(uri) == scheme


# --- layout of unpacked archives ------------------------------------------------------------


def test_one_top_level_non_package_folder_is_stripped(tmp_path: Path) -> None:
    folder = write_files(tmp_path / "t", {"func/main.py": CODE, "func/lib.py": ""})
    assert archive_tree(folder) == SourceTree(folder / "func", single_file=None)


def test_one_top_level_folder_with_one_module_gives_single_file(tmp_path: Path) -> None:
    folder = write_files(tmp_path / "t", {"func/handler.py": CODE, "func/data/x.csv": "a\n"})
    assert archive_tree(folder) == SourceTree(folder / "func", single_file="handler.py")


def test_top_level_package_folder_is_not_stripped(tmp_path: Path) -> None:
    folder = write_files(tmp_path / "t", {"pkg/__init__.py": "", "pkg/mod.py": CODE})
    assert archive_tree(folder) == SourceTree(folder, single_file=None)


def test_exactly_one_top_level_py_is_single_file(tmp_path: Path) -> None:
    folder = write_files(tmp_path / "t", {"handler.py": CODE, "pkg/__init__.py": "", "a.txt": ""})
    assert archive_tree(folder) == SourceTree(folder, single_file="handler.py")


def test_two_top_level_modules_are_not_single_file(tmp_path: Path) -> None:
    folder = write_files(tmp_path / "t", {"a.py": "", "b.py": ""})
    assert archive_tree(folder) == SourceTree(folder, single_file=None)


def test_hidden_entries_do_not_count_as_top_level(tmp_path: Path) -> None:
    folder = write_files(tmp_path / "t", {".git/config": "", "func/main.py": CODE})
    assert archive_tree(folder) == SourceTree(folder / "func", single_file="main.py")


def test_two_top_level_folders_are_not_stripped(tmp_path: Path) -> None:
    folder = write_files(tmp_path / "t", {"a/main.py": CODE, "b/other.py": ""})
    assert archive_tree(folder) == SourceTree(folder, single_file=None)


def test_a_lone_top_level_symlink_is_not_followed(tmp_path: Path) -> None:
    folder = write_files(tmp_path / "t", {})
    elsewhere = write_files(tmp_path / "elsewhere", {"main.py": CODE})
    os.symlink(elsewhere, folder / "func")
    assert archive_tree(folder).root == folder


def test_archive_with_one_top_folder_end_to_end(tmp_path: Path) -> None:
    archive = write_tar(
        tmp_path / "repo-main.tar.gz", {"repo-main/handler.py": CODE, "repo-main/README": "r"}
    )
    tree = materialise_source(
        src(str(archive)), settings=SourceSettings(cache_dir=tmp_path / "cache")
    )
    assert tree.root.name == "repo-main"
    assert tree.single_file == "handler.py"
    assert files_under(tree.root) == {"handler.py": CODE, "README": "r"}


def test_archive_with_a_top_package_end_to_end(tmp_path: Path) -> None:
    archive = write_zip(tmp_path / "pkg.zip", {"mypkg/__init__.py": "", "mypkg/api.py": CODE})
    tree = materialise_source(
        src(str(archive)), settings=SourceSettings(cache_dir=tmp_path / "cache")
    )
    assert (tree.root / "mypkg" / "api.py").read_text() == CODE
    assert tree.single_file is None
