"""Fetch official dataset files: mirrors in order, MD5 check, temp file then rename, safe extraction."""

from __future__ import annotations

import hashlib
import os
import sys
import tarfile
import urllib.request
from collections.abc import Callable
from pathlib import Path

from tqdm import tqdm

from deephash.data.locations import SOURCES, RemoteFile, download_dir, missing_files

__all__ = ["download_dataset", "download_file", "extract_archive", "fetch_url", "file_md5"]

Fetcher = Callable[[str, Path], None]


def fetch_url(url: str, dest: Path) -> None:
    """Stream ``url`` (http, https or file) into ``dest`` with a progress bar."""
    req = urllib.request.Request(url, headers={"User-Agent": "deephash"})
    with urllib.request.urlopen(req, timeout=60) as resp, dest.open("wb") as out:
        total = int(resp.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name, disable=None) as bar:
            while chunk := resp.read(1 << 20):
                out.write(chunk)
                bar.update(len(chunk))


def file_md5(path: str | Path) -> str:
    """Hex MD5 of a file, read in 1 MiB chunks."""
    h = hashlib.md5()
    with Path(path).open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def download_file(remote: RemoteFile, folder: str | Path, *, fetch: Fetcher | None = None) -> Path:
    """Download ``remote`` into ``folder`` and verify its MD5; returns the final path.

    Each mirror is fetched into a temporary file in ``folder`` that is renamed only after the MD5
    matches, so an interrupted or corrupt download never leaves a file under the final name. A
    file already present with the right MD5 is kept. ``fetch(url, dest)`` defaults to
    :func:`fetch_url`. Raises ValueError on a checksum mismatch and RuntimeError when every mirror
    fails to respond.
    """
    fetch = fetch or fetch_url
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / remote.filename
    if final.is_file() and file_md5(final) == remote.md5:
        return final
    errors: list[str] = []
    for url in remote.urls:
        tmp = folder / f".{remote.filename}.part-{os.getpid()}"
        try:
            fetch(url, tmp)
        except OSError as exc:  # URLError, HTTPError and socket errors are OSErrors
            tmp.unlink(missing_ok=True)
            errors.append(f"{url}: {exc}")
            continue
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        got = file_md5(tmp)
        if got != remote.md5:
            tmp.unlink(missing_ok=True)
            raise ValueError(
                f"checksum mismatch for {remote.filename} from {url}: MD5 {got}, expected "
                f"{remote.md5}; the download is corrupt or the file changed upstream (nothing was kept)"
            )
        os.replace(tmp, final)
        return final
    raise RuntimeError(f"could not download {remote.filename}:\n  " + "\n  ".join(errors))


def extract_archive(archive: str | Path, dest: str | Path) -> None:
    """Extract a .tar / .tar.gz / .tgz into ``dest``, refusing members that escape it."""
    dest = Path(dest).resolve()
    try:
        with tarfile.open(archive) as tar:
            if sys.version_info >= (3, 12) or hasattr(tarfile, "data_filter"):
                tar.extractall(dest, filter="data")
                return
            for member in tar.getmembers():
                target = (dest / member.name).resolve()
                if dest not in target.parents and target != dest:
                    raise ValueError(
                        f"{archive}: member {member.name!r} would extract outside {dest}"
                    )
                if member.issym() or member.islnk():
                    raise ValueError(f"{archive}: links are not allowed ({member.name!r})")
            tar.extractall(dest)
    except tarfile.TarError as exc:
        raise ValueError(f"{archive}: corrupt archive ({exc})") from exc


def download_dataset(
    name: str,
    data_dir: str | Path | None = None,
    *,
    keep_archives: bool = False,
    fetch: Fetcher | None = None,
) -> Path:
    """Download (and extract) every official file of dataset ``name``; returns its folder.

    The folder is ``<data_dir | $DEEPHASH_DATA | user cache>/<name>``; archives are removed after
    extraction unless ``keep_archives``. Files already complete there are not fetched again.
    """
    if name not in SOURCES:
        raise ValueError(
            f"dataset {name!r} cannot be downloaded; downloadable: {', '.join(sorted(SOURCES))}"
        )
    folder = download_dir(name, data_dir)
    if folder.is_dir() and not missing_files(name, folder):
        return folder
    for remote in SOURCES[name].files:
        path = download_file(remote, folder, fetch=fetch)
        if remote.extract:
            extract_archive(path, folder)
            if not keep_archives:
                path.unlink()
    missing = missing_files(name, folder)
    if missing:
        raise RuntimeError(f"after downloading {name} into {folder}, still missing: {missing}")
    return folder
