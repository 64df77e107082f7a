# Copyright: aistack.platform contributors
# Apache License 2.0 (see LICENSE)
"""``python -m <package>``: see :mod:`.cli`."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
