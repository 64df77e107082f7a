# Copyright: aistack.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Lenient readers for inventory values, shared by filters and module_utils."""

from __future__ import annotations

from typing import Any


def as_int(value: Any) -> int | None:
    """The value as an int, or None when it is not one (YAML booleans are not counts)."""
    if isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
