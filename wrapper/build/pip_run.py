"""pip run within the build's download limits: one total deadline over all its rounds (its
process group is killed when it passes, whatever a server drips), each socket wait within
read_timeout, no file it downloads (pip writes each, and its HTTP cache's copy, to a
temporary folder watched here) larger than max_download_bytes, and its memory (where an
index page is read whole) within that and PIP_MEMORY. pip reads the proxy (HTTPS_PROXY,
NO_PROXY) and trust (SSL_CERT_FILE, REQUESTS_CA_BUNDLE, PIP_CERT) settings itself, from the
environment it inherits; its failures are worded here in one line."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Optional
from urllib.parse import urlsplit
from urllib.request import getproxies

from wrapper.errors import SpecError
from wrapper.sources.settings import FetchLimits, MiB


class WheelError(SpecError):
    """A requirement has no wheel for the image, cannot be fetched, or conflicts with the
    runtime's pins."""


POLL = 0.05
"""Seconds between two looks at what pip has written (a file over the cap is cut this late)."""

PIP_MEMORY = 256 * MiB
"""pip's own memory (its resolver, parsed pages) allowed above max_download_bytes."""

OUTPUT_TAIL = 256 * 1024
"""How much of the end of pip's output is read for an error (it is kept in files, not memory)."""

CROSS = "\N{MULTIPLICATION SIGN}"
"""What the line of pip's error diagnostics that says what went wrong starts with."""


def run_bounded(command: list[str], scratch: Path, limits: FetchLimits, ends: float) -> int:
    """pip's exit code. Its output goes to files in `scratch`, its temporary files to
    `scratch`/tmp; every POLL seconds its files and memory are looked at, and its process
    group is killed at the deadline or when they outgrow the limits."""
    temporary = scratch / "tmp"
    temporary.mkdir(exist_ok=True)
    environment = {**os.environ, "TMPDIR": str(temporary)}
    with open(scratch / "pip.out", "wb") as stdout, open(scratch / "pip.err", "wb") as stderr:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            env=environment,
            start_new_session=True,  # its own process group, killed as one
        )
        try:
            while True:
                left = ends - time.monotonic()
                if left <= 0:
                    raise WheelError(
                        f"requirements: the download took longer than {limits.total_timeout:g} s"
                        " (--download-timeout, FN_WRAPPER_DOWNLOAD_TIMEOUT)"
                    )
                try:
                    return process.wait(timeout=min(POLL, left))
                except subprocess.TimeoutExpired:
                    pass
                _within_size(process.pid, temporary, limits)
        finally:
            if process.returncode is None:  # the group cannot be reused before it is reaped
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def _within_size(pid: int, temporary: Path, limits: FetchLimits) -> None:
    """A WheelError when a file pip is downloading (in `temporary`) is larger than
    max_download_bytes, or pip's memory outgrew it and PIP_MEMORY: pip reads an index page
    whole, in memory, so a page that does not end shows only there."""
    cap = limits.max_download_bytes
    if _largest_file(temporary) > cap:
        raise WheelError(
            f"requirements: a file pip downloaded is larger than max_download_bytes={cap}"
            " (--max-download-size, FN_WRAPPER_MAX_DOWNLOAD_SIZE)"
        )
    if _memory(pid) > cap + PIP_MEMORY:
        raise WheelError(
            f"requirements: pip's memory grew past max_download_bytes={cap} plus"
            f" {PIP_MEMORY // MiB} MiB of its own: an index page larger than the cap,"
            " or endless (--max-download-size, FN_WRAPPER_MAX_DOWNLOAD_SIZE)"
        )


def _largest_file(folder: Path) -> int:
    """The size of the largest file under `folder` (0 when none)."""
    largest = 0
    for root, _, names in os.walk(folder):
        for name in names:
            with contextlib.suppress(OSError):  # pip removed it meanwhile
                largest = max(largest, os.lstat(os.path.join(root, name)).st_size)
    return largest


def _memory(pid: int) -> int:
    """The bytes of anonymous memory process `pid` holds (its heap, not the files it maps);
    0 where /proc does not tell (not Linux)."""
    with contextlib.suppress(OSError, ValueError), open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    return 0


def tail(path: Path) -> str:
    """The last OUTPUT_TAIL bytes of `path`, as text."""
    with open(path, "rb") as file:
        file.seek(max(file.seek(0, os.SEEK_END) - OUTPUT_TAIL, 0))
        return file.read().decode(errors="replace")


def network_failure(output: str, limits: FetchLimits) -> Optional[str]:
    """What went wrong reaching the index or a file, from pip's `output` (after its retries
    it says only that no version was found); None when nothing did."""
    if "incomplete-download" in output:
        told = re.search(rf"^{CROSS} (.+)$", output, re.M)
        url = re.search(r"URL: (\S+)", output)
        return (
            f"{url.group(1) if url else 'a download'}: {told.group(1) if told else 'cut short'}:"
            f" the server closed the connection or stayed silent for {limits.read_timeout:g} s"
            " (--read-timeout, FN_WRAPPER_READ_TIMEOUT)"
        )
    lines = output.splitlines()
    broken = [line for line in lines if line.startswith("Could not fetch URL")] or [
        line for line in lines if "connection broken by" in line
    ]
    if not broken:
        return None
    line = broken[-1]
    fetched = re.match(r"Could not fetch URL (\S+?): ", line)
    host = re.search(r"host='([^']+)', port=(\d+)", line)
    origin = f"{host.group(1)}:{host.group(2)}" if host else ""
    tail = line.rpartition("': ")[2]  # the URL (through a proxy), or its path
    where = fetched.group(1) if fetched else tail if "://" in tail else origin + tail
    if "CERTIFICATE_VERIFY_FAILED" in line:
        found = re.search(r"certificate verify failed: ([^(']+)", line)
        detail = found.group(1).strip() if found else "certificate verify failed"
        return (
            f"the TLS certificate of {where} is not trusted ({detail}): name its CA bundle in"
            " SSL_CERT_FILE, REQUESTS_CA_BUNDLE or PIP_CERT"
        )
    if "Tunnel connection failed" in line:
        refused = re.search(r"Tunnel connection failed: ([^'\")]+)", line)
        return (
            f"the proxy refused to reach {where} ({refused.group(1) if refused else 'refused'}):"
            " check HTTPS_PROXY and NO_PROXY"
        )
    if "timed out" in line:
        return (
            f"{where} did not answer within {limits.read_timeout:g} s"
            " (--read-timeout, FN_WRAPPER_READ_TIMEOUT)"
        )
    error = re.search(r"\[Errno -?\d+\] ([^'\")]+)", line) or re.search(r"by '(\w+)", line)
    reason = error.group(1) if error else "connection failed"
    proxies = {urlsplit(url).netloc.rpartition("@")[2] for url in getproxies().values()}
    if origin in proxies:
        return f"cannot reach the proxy {origin} (HTTPS_PROXY, HTTP_PROXY) for {where}: {reason}"
    return f"cannot reach {where}: {reason}"
