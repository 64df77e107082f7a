# Copyright: aistack.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``python -m <package>``: see :mod:`.cli`."""

from __future__ import annotations

from .cli import run

if __name__ == "__main__":
    run()
