"""Stand-in for the pip bootstrap script that ansible-test downloads.

ansible-test fetches get-pip.py from a host this project's machines cannot reach. This
script does the same job offline: it installs pip from the interpreter's bundled wheel
(ensurepip) and then installs whatever pip arguments ansible-test passes (its pinned pip).
The Makefile copies it into ~/.ansible/test/cache/ under the name ansible-test expects.
"""

import subprocess
import sys

subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade", "--default-pip"])
# get-pip.py's own flags mean nothing to `pip install`.
GET_PIP_ONLY = {"--no-setuptools", "--no-wheel", "--disable-pip-version-check"}
args = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY]
if args:
    pip = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check"]
    subprocess.check_call([*pip, *args])
