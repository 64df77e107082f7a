"""The embedded default's running part (playbooks/embedded.yml) end to end: the real RAG
service as a local process, its collection created by qdrant_collection, the samples ingested
by document_ingest, one question answered; the query router's A2A server (.venv-agents) next to
it, asked through A2A with no LLM configured (it says so, and no answer is made up); idempotent
on a second run; both stopped by make down."""

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
    port, agents_port = free_port(), free_port()
    extra = json.dumps(
        {
            "aistack_local_rag_port": port,
            "aistack_local_agents_port": agents_port,
            "aistack_local_state_dir": str(tmp_path / "state"),
        }
    )
    args = ("-i", "inventories/local", "-e", extra)
    state = tmp_path / "state"
    yield (port, agents_port), args, state
    # The test stops both itself; a pid file left means it failed first: stop what still runs.
    if any(state.glob("*.pid")):
        run_playbook("playbooks/embedded_down.yml", *args)


def test_embedded_service_comes_up_answers_and_is_idempotent(embedded) -> None:
    (port, agents_port), args, state = embedded
    first = run_playbook("playbooks/embedded.yml", *args)
    assert first.returncode == 0, first.stdout + first.stderr
    assert recap(first.stdout, "localhost")["changed"] >= 4  # collection, start x2, ingest
    assert "Ingested 7 new, 0 updated, 0 unchanged, 0 removed" in first.stdout
    assert "Sources: " in first.stdout and ".md" in first.stdout
    assert (state / "qdrant").is_dir()

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/collections", timeout=10) as r:
        collections = json.load(r)
    assert "aistack-docs" in json.dumps(collections)
    # The router runs, knows the RAG service, and said it had no LLM instead of answering.
    with urllib.request.urlopen(f"http://127.0.0.1:{agents_port}/healthz", timeout=10) as r:
        assert json.load(r)["status"] == "ok"
    out = " ".join(first.stdout.split())
    assert "Router: the task failed, no answer. The query router could not answer: no LLM" in out
    assert "set aistack_local_agents_llm_url and aistack_local_agents_llm_model" in out
    assert "Router A:" not in out

    second = run_playbook("playbooks/embedded.yml", *args)
    assert second.returncode == 0, second.stdout
    assert recap(second.stdout, "localhost")["changed"] == 0
    assert "Ingested 0 new, 0 updated, 7 unchanged, 0 removed" in second.stdout

    down = run_playbook("playbooks/embedded_down.yml", *args)
    assert down.returncode == 0
    for url in (f"http://127.0.0.1:{port}/health", f"http://127.0.0.1:{agents_port}/healthz"):
        with pytest.raises(OSError):
            urllib.request.urlopen(url, timeout=2)
