"""The re-rankers: overlap (0.6 similarity + 0.4 Jaccard) and remote (a real Jina-style
/v1/rerank server on loopback), each checked against an order computed here independently."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
from fastapi.testclient import TestClient

from rag_pipeline.rerank import overlap_rerank
from rag_pipeline.retrieval import Candidate

DOCS = {
    "long": "Kubernetes schedules GPU workloads across the nodes of a cluster, and the device "
    "plugin advertises every GPU so that pods can request them.",
    "mid": "GPU time slicing lets pods share one GPU.",
    "short": "GPU sharing.",
    # Most of the query's words, another topic: Jaccard lifts it, similarity does not.
    "pizza": "How do you share one pizza with time slicing among pods of friends?",
    "other": "Longhorn replicates block storage volumes between nodes.",
}
QUERY = "How do pods share one GPU with time slicing?"


def _words(text: str) -> set[str]:
    # Independent of the service's tokenizer: these texts are plain ASCII English.
    return set(re.findall(r"[a-z0-9]+", text.lower()))


def _expected_overlap(query: str, hits: list[tuple[str, float, str]]) -> list[tuple[str, float]]:
    """0.6 * retrieval score min-max scaled over the candidates + 0.4 * Jaccard, best first."""
    lo, hi = min(s for _, s, _ in hits), max(s for _, s, _ in hits)
    q = _words(query)
    out = []
    for doc, score, text in hits:
        t = _words(text)
        out.append((doc, 0.6 * (score - lo) / (hi - lo) + 0.4 * len(q & t) / len(q | t)))
    return sorted(out, key=lambda x: x[1], reverse=True)


def test_overlap_rerank_mixes_scaled_similarity_and_jaccard() -> None:
    cands = [
        Candidate("a", {"text": "nothing in common here"}, 0.9),
        Candidate("b", {"text": "pods share one GPU"}, 0.5),
        Candidate("c", {"text": "GPU"}, 0.1),
    ]
    ranked = overlap_rerank("pods share one GPU", cands)
    # a: 0.6*1 + 0 = 0.6; b: 0.6*0.5 + 0.4*1 = 0.7; c: 0 + 0.4*1/4 = 0.1
    assert [(c.id, round(s, 6)) for c, s in ranked] == [("b", 0.7), ("a", 0.6), ("c", 0.1)]
    assert [c.id for c, _ in overlap_rerank("x", cands, vector_weight=1.0)] == ["a", "b", "c"]
    assert overlap_rerank("x", []) == []


def _query(client: TestClient, **overrides: Any) -> list[dict[str, Any]]:
    body = {"query": QUERY, "top_k": 5, "top_n": 5, "generate": False, "strategy": "dense"}
    r = client.post("/query", json={**body, **overrides})
    assert r.status_code == 200, r.text
    return r.json()["sources"]  # type: ignore[no-any-return]


def test_overlap_rerank_through_the_service(make_client: Callable[..., TestClient]) -> None:
    client = make_client()
    docs = [{"text": t, "document_id": d} for d, t in DOCS.items()]
    assert client.post("/ingest/batch", json={"documents": docs}).status_code == 200
    plain = _query(client)
    hits = [(s["document_id"], s["score"], s["text"]) for s in plain]
    expected = _expected_overlap(QUERY, hits)
    reranked = _query(client, reranker="overlap")
    assert [s["document_id"] for s in reranked] == [d for d, _ in expected]
    for source, (_, score) in zip(reranked, expected, strict=True):
        assert source["rerank_score"] == pytest.approx(score, abs=1e-5)
    # The re-rank changed the order (else this test could not tell it ran).
    assert [d for d, _ in expected] != [s["document_id"] for s in plain]


class _Reranker(BaseHTTPRequestHandler):
    """Jina-style POST /v1/rerank: scores each document by how short it is."""

    requests: ClassVar[list[dict[str, Any]]] = []
    fail = False

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        type(self).requests.append({"path": self.path, **body})
        if type(self).fail:
            self.send_response(500)
            self.end_headers()
            return
        docs = body["documents"]
        results = [{"index": i, "relevance_score": 1.0 / len(d)} for i, d in enumerate(docs)]
        data = json.dumps({"model": body["model"], "results": results}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def rerank_server() -> Iterator[str]:
    _Reranker.requests, _Reranker.fail = [], False
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Reranker)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_remote_rerank_orders_by_the_servers_scores(
    make_client: Callable[..., TestClient], rerank_server: str
) -> None:
    client = make_client(reranker="remote", rerank_url=rerank_server, rerank_model="jina-test")
    docs = [{"text": t, "document_id": d} for d, t in DOCS.items()]
    assert client.post("/ingest/batch", json={"documents": docs}).status_code == 200
    plain = _query(client, reranker="none")
    reranked = _query(client)
    by_length = sorted(plain, key=lambda s: len(s["text"]))
    assert [s["document_id"] for s in reranked] == [s["document_id"] for s in by_length]
    for source in reranked:
        assert source["rerank_score"] == pytest.approx(1.0 / len(source["text"]), abs=1e-6)
    assert [s["document_id"] for s in reranked] != [s["document_id"] for s in plain]
    (sent,) = _Reranker.requests
    assert sent["path"] == "/v1/rerank"
    assert sent["model"] == "jina-test" and sent["query"] == QUERY and sent["top_n"] == 5
    assert sorted(sent["documents"]) == sorted(s["text"] for s in plain)
    # The server fails: the retrieval order stands, the query still answers.
    _Reranker.fail = True
    assert [s["document_id"] for s in _query(client)] == [s["document_id"] for s in plain]


def test_the_removed_legacy_strategy_is_refused_naming_the_strategies(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pydantic import ValidationError

    from rag_pipeline.settings import Settings

    monkeypatch.setenv("EMBEDDING_STRATEGY", "legacy")
    with pytest.raises(ValidationError, match="'dense', 'sparse' or 'hybrid'"):
        Settings()
    r = client.post("/query", json={"query": "x", "strategy": "legacy"})
    assert r.status_code == 422
    assert "'dense', 'sparse' or 'hybrid'" in r.json()["detail"][0]["msg"]
