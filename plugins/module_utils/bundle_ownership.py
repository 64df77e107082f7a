# Copyright: aistack.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which files of a bundle directory manifest_bundle wrote, so it never touches the others.

The module records the files it writes in a marker, ``.aistack-bundle.json`` in the bundle
directory (``{"format": 1, "owner": ..., "files": [...]}``). Pruning and ``state: absent``
remove only those files, then directories left empty by that, ``dest`` last and only when
empty. A directory holding files but no marker is not written to nor cleaned up, with one
exception: bundles written before the marker existed (by this module's earlier versions)
are adopted - files named like bundle files that start with the module's header line.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any

MARKER = ".aistack-bundle.json"
MARKER_FORMAT = 1
OWNER = "aistack.platform.manifest_bundle"
# Names an earlier version of the module wrote (see plan_files); adopted only with HEADER.
LEGACY_NAME = re.compile(
    r"^(\d+-[a-z0-9.-]+-[a-z0-9.-]+\.yaml|helm/[a-z0-9.-]+/(release|values)\.yaml"
    r"|kustomization\.yaml|remote\.yaml|secrets\.required\.yaml)$"
)


class BundleError(ValueError):
    """``dest`` cannot be used (the message says why and what to do)."""


@dataclass
class Ownership:
    """What ``dest`` holds: files this module owns, adopted ones, and everybody else's."""

    dest: str
    exists: bool = False
    marker: dict[str, Any] | None = None  # as read; None when there is none
    owned: set[str] = field(default_factory=set)  # relative paths (present or not)
    adopted: list[str] = field(default_factory=list)  # owned by adoption (no marker)
    unmanaged: list[str] = field(default_factory=list)  # present, not ours: never touched
    leftovers: list[str] = field(default_factory=list)  # <owned>.tmp of an interrupted write

    def present(self) -> list[str]:
        """Owned files that exist."""
        return sorted(name for name in self.owned if os.path.isfile(self.path(name)))

    def path(self, name: str) -> str:
        return os.path.join(self.dest, name)

    def marker_for(self, files: set[str]) -> dict[str, Any]:
        return {"format": MARKER_FORMAT, "owner": OWNER, "files": sorted(files)}


def _all_files(dest: str) -> list[str]:
    """Every non-directory entry under dest (links are not followed), relative, sorted."""
    found = []
    for root, dirs, files in os.walk(dest):
        # A link to a directory is an entry like a file: it is not ours to descend into.
        found.extend(os.path.join(root, d) for d in dirs if os.path.islink(os.path.join(root, d)))
        found.extend(os.path.join(root, f) for f in files)
    return sorted(os.path.relpath(path, dest) for path in found)


def safe_name(dest: str, name: str) -> bool:
    """``name`` stays inside dest: relative, no '..', no symbolic link on the way."""
    if not isinstance(name, str) or not name or os.path.isabs(name):
        return False
    parts = os.path.normpath(name).split(os.sep)
    if parts[0] == os.pardir or os.path.normpath(name) != name.rstrip("/"):
        return False
    current = dest
    for part in parts[:-1]:
        current = os.path.join(current, part)
        if os.path.islink(current):
            return False
    return True


def _read_marker(dest: str) -> dict[str, Any]:
    path = os.path.join(dest, MARKER)
    try:
        with open(path, encoding="utf-8") as handle:
            marker = json.load(handle)
    except (OSError, ValueError) as exc:
        raise BundleError(
            f"{path}: cannot read the bundle marker ({exc}); remove it only if {dest} holds "
            "nothing but this module's bundle (it is then adopted), or use another dest"
        ) from None
    if not isinstance(marker, dict) or not isinstance(marker.get("format"), int):
        raise BundleError(f"{path}: not a bundle marker of {OWNER} (no format number)")
    if marker["format"] > MARKER_FORMAT:
        raise BundleError(
            f"{path}: marker format {marker['format']} was written by a newer version of "
            f"{OWNER} (this one reads format {MARKER_FORMAT}); upgrade the collection"
        )
    files = marker.get("files")
    if not isinstance(files, list) or not all(safe_name(dest, f) for f in files):
        raise BundleError(
            f"{path}: its file list is not a list of relative paths inside {dest}; "
            "refusing to touch any file"
        )
    return marker


def _starts_with(path: str, header: str) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(len(header.encode())) == header.encode()
    except OSError:
        return False


def inspect_dest(dest: str, header: str) -> Ownership:
    """What dest holds; BundleError when it is a file, or a foreign non-empty directory."""
    own = Ownership(dest)
    if os.path.lexists(dest) and not os.path.isdir(dest):
        raise BundleError(f"dest {dest} exists and is not a directory; give a directory")
    if not os.path.isdir(dest):
        return own
    own.exists = True
    entries = [name for name in _all_files(dest) if name not in (MARKER, MARKER + ".tmp")]
    if os.path.lexists(os.path.join(dest, MARKER + ".tmp")):  # an interrupted write_marker
        own.leftovers.append(MARKER + ".tmp")
    if os.path.lexists(os.path.join(dest, MARKER)):
        own.marker = _read_marker(dest)
        own.owned = set(own.marker["files"])
    else:
        own.adopted = [
            name
            for name in entries
            if LEGACY_NAME.match(name.replace(os.sep, "/"))
            and not os.path.islink(own.path(name))
            and _starts_with(own.path(name), header)
        ]
        own.owned = set(own.adopted)
        if entries and not own.adopted:
            shown = ", ".join(map(printable, entries[:5])) + (", ..." if len(entries) > 5 else "")
            raise BundleError(
                f"dest {dest} is not empty and holds no bundle of {OWNER} (no {MARKER}, no "
                f"file it writes): refusing to write or remove anything there ({shown}); "
                "use an empty or new directory for the bundle"
            )
    own.leftovers += [n for n in entries if n.endswith(".tmp") and n[: -len(".tmp")] in own.owned]
    own.unmanaged = [n for n in entries if n not in own.owned and n not in own.leftovers]
    return own


def printable(name: str) -> str:
    """A file name as UTF-8 text (bytes that are not UTF-8 shown as \\xNN)."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def write_marker(own: Ownership, files: set[str]) -> None:
    """Record ``files`` as owned (write then rename: never a truncated marker)."""
    os.makedirs(own.dest, exist_ok=True)
    path = own.path(MARKER)
    with open(path + ".tmp", "w", encoding="utf-8") as handle:
        json.dump(own.marker_for(files), handle, indent=2)
        handle.write("\n")
    os.replace(path + ".tmp", path)


def remove_owned(own: Ownership, names: list[str]) -> None:
    """Remove owned files, then the directories that left empty (never others)."""
    parents = set()
    for name in names + own.leftovers:
        if not safe_name(own.dest, name):  # pragma: no cover - checked when read
            continue
        with contextlib.suppress(FileNotFoundError):
            os.remove(own.path(name))
        parents.add(os.path.dirname(name))
    for parent in sorted(parents, key=len, reverse=True):
        while parent:
            path = own.path(parent)
            if not os.path.isdir(path) or os.path.islink(path) or os.listdir(path):
                break
            os.rmdir(path)
            parent = os.path.dirname(parent)


def remove_bundle(own: Ownership) -> None:
    """state=absent: the owned files and the marker, then dest if nothing else is left."""
    remove_owned(own, own.present())
    with contextlib.suppress(FileNotFoundError):
        os.remove(own.path(MARKER))
    if os.path.isdir(own.dest) and not os.listdir(own.dest):
        os.rmdir(own.dest)
