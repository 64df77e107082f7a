# Copyright: aistack.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""File discovery and text extraction for document ingestion (text, Markdown, HTML, PDF).

Pure Python: HTML needs beautifulsoup4 and PDF needs pypdf, imported only when such a file
is read, so a text-only ingestion works without them.
"""

from __future__ import annotations

import glob
import os
import re
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
    path: str  # absolute path
    document_id: str  # path relative to base_dir, "/"-separated, plus the prefix
    format: str | None  # None: unsupported (only possible for files found in directories)


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


def _walk(directory: str, recursive: bool) -> list[str]:
    found = []
    for root, dirs, files in os.walk(directory, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(os.path.join(root, f) for f in sorted(files) if not f.startswith("."))
        if not recursive:
            break
    return found


def discover(
    paths: list[str], base_dir: str, recursive: bool = True, id_prefix: str = ""
) -> tuple[list[SourceFile], list[SourceFile]]:
    """Expand files, directories and globs.

    Returns (supported files, unsupported files found inside directories), each sorted by
    document_id. Raises DocumentError for a path that matches nothing, an explicitly named
    file of an unsupported type, or a file outside base_dir.
    """
    base_dir = os.path.abspath(base_dir)
    chosen: dict[str, bool] = {}  # absolute path -> named explicitly
    for raw in paths:
        path = os.path.abspath(os.path.expanduser(raw))
        if GLOB_CHARS.search(path):
            matches = sorted(glob.glob(path, recursive=recursive))
            if not matches:
                raise DocumentError(f"{raw}: the pattern matches no file")
            for match in matches:
                if os.path.isdir(match):
                    for found in _walk(match, recursive):
                        chosen.setdefault(found, False)
                elif os.path.isfile(match):
                    # Matched by extension on purpose, or by a wildcard: unsupported types of
                    # a pattern such as docs/* are skipped rather than failing the task.
                    chosen.setdefault(match, False)
        elif os.path.isdir(path):
            for found in _walk(path, recursive):
                chosen.setdefault(found, False)
        elif os.path.isfile(path):
            chosen[path] = True
        else:
            raise DocumentError(f"{raw}: no such file or directory")

    supported: list[SourceFile] = []
    unsupported: list[SourceFile] = []
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
        relative = os.path.relpath(path, base_dir)
        if relative == os.pardir or relative.startswith(os.pardir + os.sep):
            raise DocumentError(f"{path}: outside base_dir {base_dir}")
        document_id = id_prefix + relative.replace(os.sep, "/")
        if document_id in seen_ids:  # pragma: no cover - paths are unique
            raise DocumentError(f"{path}: document_id {document_id!r} is not unique")
        seen_ids[document_id] = path
        (supported if fmt else unsupported).append(SourceFile(path, document_id, fmt))
    supported.sort(key=lambda f: f.document_id)
    unsupported.sort(key=lambda f: f.document_id)
    return supported, unsupported


def _normalise_whitespace(text: str) -> str:
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _read_text(path: str) -> str:
    with open(path, "rb") as handle:
        data = handle.read()
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
    try:
        reader = PdfReader(path)
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
