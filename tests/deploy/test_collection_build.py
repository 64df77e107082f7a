"""The collection builds into a tarball that installs and resolves by FQCN."""

from __future__ import annotations

import subprocess
import tarfile
from pathlib import Path

from tests.conftest import BIN, REPO, ansible_env


def test_build_install_and_resolve(tmp_path: Path) -> None:
    build = subprocess.run(
        [str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(tmp_path), "."],
        cwd=REPO,
        env=ansible_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    tarballs = list(tmp_path.glob("aistack-platform-*.tar.gz"))
    assert len(tarballs) == 1, build.stdout
    with tarfile.open(tarballs[0]) as tar:
        names = set(tar.getnames())
    assert {"MANIFEST.json", "meta/runtime.yml", "plugins/modules/manifest_bundle.py"} <= names
    assert "roles/deploy/tasks/main.yml" in names
    # Development-only content stays out of the artifact.
    assert not any(
        n.startswith((".venv", "build/", "collections/ansible_collections")) for n in names
    )

    install_root = tmp_path / "installed"
    # Outside the repository's ansible.cfg, which would find the in-place copy instead.
    outside_env = {
        **{k: v for k, v in ansible_env().items() if k != "ANSIBLE_CONFIG"},
        "ANSIBLE_COLLECTIONS_PATH": str(install_root),
    }
    subprocess.run(
        [
            *(str(BIN / "ansible-galaxy"), "collection", "install", "--offline", "--force"),
            "--no-deps",
            *("-p", str(install_root), str(tarballs[0])),
        ],
        cwd=tmp_path,
        env=outside_env,
        capture_output=True,
        text=True,
        check=True,
    )
    doc = subprocess.run(
        [str(BIN / "ansible-doc"), "aistack.platform.manifest_bundle"],
        cwd=tmp_path,  # outside the repository: only the installed copy can answer
        env=outside_env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert str(install_root) in doc.stdout
    assert "GitOps bundle" in doc.stdout
