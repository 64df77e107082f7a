"""The embedded default's running part (playbooks/embedded.yml) end to end: the real RAG
service as a local process, its collection created by qdrant_collection, the samples ingested
by document_ingest, one question answered; idempotent on a second run; stopped by make down."""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import free_port, run_playbook


def recap(stdout: str, host: str) -> dict[str, int]:
    match = re.search(rf"^{re.escape(host)}\s+:\s+(.*)$", stdout, re.M)
    assert match, stdout
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", match.group(1))}


@pytest.fixture
def embedded(tmp_path: Path):
    port = free_port()
    extra = json.dumps(
        {"aistack_local_rag_port": port, "aistack_local_state_dir": str(tmp_path / "state")}
    )
    args = ("-i", "inventories/local", "-e", extra)
    yield port, args, tmp_path / "state"
    run_playbook("playbooks/embedded_down.yml", *args)


def test_embedded_service_comes_up_answers_and_is_idempotent(embedded) -> None:
    port, args, state = embedded
    first = run_playbook("playbooks/embedded.yml", *args)
    assert first.returncode == 0, first.stdout + first.stderr
    assert recap(first.stdout, "localhost")["changed"] >= 3  # collection, start, ingest
    assert "Ingested 7 new, 0 updated, 0 unchanged, 0 removed" in first.stdout
    assert "Sources: " in first.stdout and ".md" in first.stdout
    assert (state / "qdrant").is_dir()

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/collections", timeout=10) as r:
        collections = json.load(r)
    assert "aistack-docs" in json.dumps(collections)

    second = run_playbook("playbooks/embedded.yml", *args)
    assert second.returncode == 0, second.stdout
    assert recap(second.stdout, "localhost")["changed"] == 0
    assert "Ingested 0 new, 0 updated, 7 unchanged, 0 removed" in second.stdout

    down = run_playbook("playbooks/embedded_down.yml", *args)
    assert down.returncode == 0
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
