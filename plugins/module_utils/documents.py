# Copyright: aistack.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""File discovery and text extraction for document ingestion (text, Markdown, HTML, PDF).

Pure Python: HTML needs beautifulsoup4 and PDF needs pypdf, imported only when such a file
is read, so a text-only ingestion works without them.
"""

from __future__ import annotations

import errno
import glob
import io
import os
import re
import stat
from dataclasses import dataclass, field
from typing import Any

FORMATS: dict[str, str] = {
    ".txt": "text",
    ".text": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
}
GLOB_CHARS = re.compile(r"[*?[]")
MARKDOWN_TITLE = re.compile(r"^\s{0,3}#\s+(.+?)\s*#*\s*$", re.MULTILINE)


class DocumentError(ValueError):
    """A file cannot be read or turned into text; the message names the file."""


@dataclass
class SourceFile:
    path: str  # absolute path (as the file system has it: show it through printable())
    document_id: str  # path relative to base_dir, "/"-separated, plus the prefix
    format: str | None  # None: unsupported (only possible for files found in directories)
    # Files that are not ingested: "skipped" or "failed", and why.
    status: str | None = None
    reason: str | None = None


@dataclass
class Extracted:
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


def file_format(path: str) -> str | None:
    return FORMATS.get(os.path.splitext(path)[1].lower())


def _glob_root(pattern: str) -> str:
    """Longest leading directory of a glob pattern without wildcards."""
    parts = pattern.split(os.sep)
    fixed: list[str] = []
    for part in parts:
        if GLOB_CHARS.search(part):
            break
        fixed.append(part)
    root = os.sep.join(fixed) or os.sep
    return root if os.path.isdir(root) else os.path.dirname(root)


def input_roots(paths: list[str]) -> list[str]:
    """The directory each input stands for: itself (directory), its parent (file), its fixed
    prefix (glob). Their common path is the default base_dir, stable across runs."""
    roots = []
    for raw in paths:
        path = os.path.abspath(os.path.expanduser(raw))
        if GLOB_CHARS.search(path):
            roots.append(_glob_root(path))
        elif os.path.isdir(path):
            roots.append(path)
        else:
            roots.append(os.path.dirname(path))
    return roots


def default_base_dir(paths: list[str]) -> str:
    roots = input_roots(paths)
    return os.path.commonpath(roots) if roots else os.getcwd()


def printable(path: str) -> str:
    """``path`` as text that survives JSON and UTF-8 output: bytes of a file name that is not
    UTF-8 (surrogate-escaped by Python) are shown as ``\\xNN``."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _walk(directory: str, recursive: bool, unlisted: dict[str, str]) -> list[str]:
    """Files under ``directory`` (hidden ones excluded); directories that cannot be listed go
    to ``unlisted`` (path -> reason) instead of being silently left out."""

    def onerror(exc: OSError) -> None:
        unlisted[exc.filename or directory] = f"cannot list the directory: {exc.strerror or exc}"

    found = []
    for root, dirs, files in os.walk(directory, onerror=onerror, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(os.path.join(root, f) for f in sorted(files) if not f.startswith("."))
        if not recursive:
            break
    return found


NON_REGULAR = (
    (stat.S_ISFIFO, "FIFO"),
    (stat.S_ISSOCK, "socket"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
    (stat.S_ISDIR, "directory"),
)


def _kind(mode: int) -> str:
    return next((name for test, name in NON_REGULAR if test(mode)), "unknown type")


def os_error_reason(path: str, exc: OSError) -> str:
    """Why ``path`` cannot be used, in words (without the path)."""
    if exc.errno == errno.ELOOP:
        return "symbolic link loop (too many levels of symbolic links)"
    if exc.errno == errno.ENOENT:
        try:
            target = printable(os.readlink(path))
        except OSError:  # not a link (or gone meanwhile)
            return "the file no longer exists (removed while the task ran)"
        return f"dangling symbolic link (its target {target} does not exist)"
    return f"cannot be read: {exc.strerror or exc}"


def inspect(path: str) -> tuple[str | None, str | None]:
    """(status, reason) of a path found in a directory or by a pattern: (None, None) for a
    regular file, ("failed", why) when it cannot be read, ("skipped", why) for FIFOs,
    sockets, devices and other non-regular files (never opened: opening a FIFO blocks)."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        return "failed", os_error_reason(path, exc)
    if not stat.S_ISREG(mode):
        return "skipped", f"not a regular file ({_kind(mode)})"
    return None, None


def discover(
    paths: list[str], base_dir: str, recursive: bool = True, id_prefix: str = ""
) -> tuple[list[SourceFile], list[SourceFile]]:
    """Expand files, directories and globs.

    Returns (supported files, the others), each sorted by document_id. The others are not
    ingested and carry a status: V(skipped) (an unsupported type, or not a regular file) or
    V(failed) (a symbolic link loop, a dangling link, a file name that is not UTF-8, a
    directory that cannot be listed). Raises DocumentError for an input path that matches
    nothing or is not a regular file or directory, an explicitly named file of an
    unsupported type, or a file outside base_dir.
    """
    base_dir = os.path.abspath(base_dir)
    chosen: dict[str, bool] = {}  # absolute path -> named explicitly
    unlisted: dict[str, str] = {}  # directories that cannot be listed -> reason
    for raw in paths:
        path = os.path.abspath(os.path.expanduser(raw))
        if GLOB_CHARS.search(path):
            matches = sorted(glob.glob(path, recursive=recursive))
            if not matches:
                raise DocumentError(f"{raw}: the pattern matches no file")
            for match in matches:
                if os.path.isdir(match):
                    for found in _walk(match, recursive, unlisted):
                        chosen.setdefault(found, False)
                else:
                    # Matched by extension on purpose, or by a wildcard: unsupported types of
                    # a pattern such as docs/* are skipped rather than failing the task.
                    chosen.setdefault(match, False)
        elif os.path.isdir(path):
            for found in _walk(path, recursive, unlisted):
                chosen.setdefault(found, False)
        elif os.path.isfile(path):
            chosen[path] = True
        elif os.path.lexists(path):  # a link loop, a dangling link, a FIFO, a device...
            raise DocumentError(f"{raw}: {inspect(path)[1]}")
        else:
            raise DocumentError(f"{raw}: no such file or directory")

    supported: list[SourceFile] = []
    others: list[SourceFile] = []
    seen_ids: dict[str, str] = {}
    for path, explicit in chosen.items():
        fmt = file_format(path)
        if fmt is None and explicit:
            raise DocumentError(
                "{}: unsupported file type {!r} (supported: {})".format(
                    path,
                    os.path.splitext(path)[1] or "(no extension)",
                    ", ".join(sorted(FORMATS)),
                )
            )
        document_id = _document_id(path, base_dir, id_prefix)
        if document_id in seen_ids:  # pragma: no cover - paths are unique
            raise DocumentError(f"{path}: document_id {document_id!r} is not unique")
        seen_ids[document_id] = path
        source = SourceFile(path, printable(document_id), fmt)
        if printable(path) != path:
            # IDs and paths are stored as UTF-8 text: a name that is not UTF-8 has no faithful
            # ID. Reported with its bytes escaped (\\xNN), never opened.
            source.status, source.reason = "failed", "the file name is not valid UTF-8; rename it"
        elif fmt is None:
            source.status, source.reason = "skipped", "unsupported file type"
        else:  # only files that would be read are looked at (and never opened here)
            source.status, source.reason = inspect(path)
        (others if source.status else supported).append(source)
    for directory, reason in unlisted.items():
        document_id = _document_id(directory, base_dir, id_prefix) + "/"
        others.append(SourceFile(directory, printable(document_id), None, "failed", reason))
    supported.sort(key=lambda f: f.document_id)
    others.sort(key=lambda f: f.document_id)
    return supported, others


def _document_id(path: str, base_dir: str, id_prefix: str) -> str:
    relative = os.path.relpath(path, base_dir)
    if relative == os.pardir or relative.startswith(os.pardir + os.sep):
        raise DocumentError(f"{printable(path)}: outside base_dir {base_dir}")
    return id_prefix + relative.replace(os.sep, "/")


def _normalise_whitespace(text: str) -> str:
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def read_bytes(path: str) -> bytes:
    """The content of the regular file ``path``; DocumentError (naming it) for anything else.

    Opened without blocking and checked on the open descriptor, so a file replaced by a FIFO
    after discovery cannot hang the task, and a file removed meanwhile is reported as such.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise DocumentError(f"{printable(path)}: {os_error_reason(path, exc)}") from None
    with os.fdopen(fd, "rb") as handle:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise DocumentError(f"{printable(path)}: not a regular file ({_kind(mode)})")
        try:
            return handle.read()
        except OSError as exc:
            raise DocumentError(f"{printable(path)}: {os_error_reason(path, exc)}") from None


def _read_text(path: str) -> str:
    data = read_bytes(path)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DocumentError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def _html(path: str) -> Extracted:
    try:
        from bs4 import BeautifulSoup
    except ImportError:
        raise DocumentError(
            f"{path}: HTML needs the Python library beautifulsoup4 (pip install beautifulsoup4)"
        ) from None
    soup = BeautifulSoup(_read_text(path), "html.parser")
    title = soup.title.get_text(" ", strip=True) if soup.title else None
    for tag in soup(["script", "style", "noscript", "template", "svg", "head"]):
        tag.decompose()
    text = _normalise_whitespace(soup.get_text("\n"))
    return Extracted(text, {"title": title} if title else {})


def _pdf(path: str) -> Extracted:
    try:
        from pypdf import PdfReader
        from pypdf.errors import PdfReadError
    except ImportError:
        raise DocumentError(
            f"{path}: PDF needs the Python library pypdf (pip install pypdf)"
        ) from None
    data = read_bytes(path)
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise DocumentError(f"{path}: the PDF is encrypted")
        pages = [page.extract_text() or "" for page in reader.pages]
        info = reader.metadata
        title = info.title if info is not None and info.title else None
    except DocumentError:
        raise
    except (PdfReadError, ValueError, KeyError, OSError) as exc:
        raise DocumentError(f"{path}: not a readable PDF ({exc})") from None
    metadata: dict[str, Any] = {"pages": len(pages)}
    if title:
        metadata["title"] = str(title)
    return Extracted(_normalise_whitespace("\n\n".join(pages)), metadata)


def extract(source: SourceFile) -> Extracted:
    """Text and format-specific metadata of one file; raises DocumentError naming it."""
    if source.format in ("text", "markdown"):
        text = _normalise_whitespace(_read_text(source.path))
        metadata: dict[str, Any] = {}
        if source.format == "markdown":
            match = MARKDOWN_TITLE.search(text)
            if match:
                metadata["title"] = match.group(1)
        return Extracted(text, metadata)
    if source.format == "html":
        return _html(source.path)
    if source.format == "pdf":
        return _pdf(source.path)
    raise DocumentError(f"{source.path}: unsupported file type")
