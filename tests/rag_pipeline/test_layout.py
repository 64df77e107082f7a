"""The collection layout, defined once: the function, GET /collection-layout, the CLI, the
layout check of existing collections, and Qdrant TLS settings."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from rag_pipeline.layout import DENSE, SPARSE, collection_layout
from rag_pipeline.pipeline import Pipeline
from rag_pipeline.settings import Settings
from rag_pipeline.stores import CollectionMismatchError, StoreUnavailableError, make_store
from rag_pipeline.stores.qdrant import tls_kwargs
from tests.conftest import REPO as ROOT

SERVER_LAYOUT = {
    "vectors": {"dense": {"size": 384, "distance": "Cosine"}},
    "sparse_vectors": {"bm25-unicode-v2": {"modifier": "idf"}},
    "payload_indexes": {
        "document_id": "keyword",
        "content_hash": "keyword",
        "current_version_id": "keyword",
    },
}


def test_collection_layout_in_qdrant_collection_format() -> None:
    assert collection_layout(384, server=True) == SERVER_LAYOUT
    embedded = collection_layout(8, server=False)
    assert "payload_indexes" not in embedded
    assert embedded["vectors"] == {DENSE: {"size": 8, "distance": "Cosine"}}
    assert embedded["sparse_vectors"] == {SPARSE: {"modifier": "idf"}}
    # Callers get their own copy.
    collection_layout(8, server=True)["payload_indexes"]["x"] = "keyword"
    assert "x" not in collection_layout(8, server=True)["payload_indexes"]


def test_layout_route_needs_auth_and_describes_the_layout(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client()
    assert TestClient(client.app).get("/collection-layout").status_code == 401
    r = client.get("/collection-layout")
    assert r.status_code == 200, r.text
    assert r.json() == {
        "embedding_backend": "local",
        "embedding_model": "all-MiniLM-L6-v2",
        "dimension": 384,
        "vector_store": "qdrant",
        "sparse_tokenizer": "unicode-v2",
        "vectors": SERVER_LAYOUT["vectors"],
        "sparse_vectors": SERVER_LAYOUT["sparse_vectors"],
    }  # embedded Qdrant: no payload indexes
    schema = client.get("/openapi.json").json()
    layout = schema["components"]["schemas"]["CollectionLayout"]
    assert "qdrant_collection" in layout["description"]
    assert "/collection-layout" in schema["paths"]


def test_layout_is_what_the_store_creates(make_pipeline: Callable[..., Pipeline]) -> None:
    pipeline = make_pipeline()
    pipeline.ensure_collection("made")
    params = pipeline.store.client.get_collection("made").config.params  # type: ignore[attr-defined]
    layout = pipeline.layout()
    assert params.vectors[DENSE].size == layout["dimension"] == 384
    assert params.vectors[DENSE].distance.value == layout["vectors"][DENSE]["distance"]
    assert params.sparse_vectors[SPARSE].modifier.value == "idf"
    assert pipeline.check_collection("made") is True
    assert pipeline.check_collection("absent") is False


@pytest.mark.parametrize(
    ("vectors", "sparse", "problem"),
    [
        ({"dense": (384, "Dot")}, {SPARSE: "idf"}, "compares 'dense' vectors by Dot"),
        ({"other": (384, "Cosine")}, {SPARSE: "idf"}, "has no 'dense' named vector"),
        ({"dense": (384, "Cosine")}, {}, f"has no {SPARSE!r} sparse vector"),
        ({"dense": (384, "Cosine")}, {SPARSE: None}, "sparse vector with modifier none"),
    ],
)
def test_other_layouts_are_refused_naming_the_layout(
    make_pipeline: Callable[..., Pipeline],
    vectors: dict[str, tuple[int, str]],
    sparse: dict[str, str | None],
    problem: str,
) -> None:
    from qdrant_client import models

    pipeline = make_pipeline()
    pipeline.store.client.create_collection(  # type: ignore[attr-defined]
        "odd",
        vectors_config={
            n: models.VectorParams(size=s, distance=models.Distance(d))
            for n, (s, d) in vectors.items()
        },
        sparse_vectors_config={
            n: models.SparseVectorParams(modifier=models.Modifier(m) if m else None)
            for n, m in sparse.items()
        },
    )
    with pytest.raises(CollectionMismatchError) as info:
        pipeline.check_collection("odd")
    assert problem in str(info.value)
    assert json.dumps(collection_layout(384, server=False)) in str(info.value)
    assert info.value.layout == collection_layout(384, server=False)


def test_cli_layout_prints_json_without_opening_the_store(tmp_path: Path) -> None:
    store = tmp_path / "qdrant"
    env = {
        **os.environ,
        "EMBEDDING_BACKEND": "local",
        "HF_HUB_OFFLINE": "1",
        "QDRANT_PATH": str(store),
    }
    proc = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "rag-pipeline"), "layout"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    layout = json.loads(proc.stdout)
    assert layout["dimension"] == 384
    assert layout["vectors"] == {"dense": {"size": 384, "distance": "Cosine"}}
    assert layout["sparse_vectors"] == {"bm25-unicode-v2": {"modifier": "idf"}}
    assert "payload_indexes" not in layout  # embedded Qdrant
    assert not store.exists()  # the store was never opened

    bad = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "rag-pipeline"), "layout"],
        env={**env, "EMBEDDING_BACKEND": "openai", "LOCALAI_URL": "", "EMBEDDING_URL": ""},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert bad.returncode == 1
    assert "needs EMBEDDING_URL or LOCALAI_URL" in bad.stderr and bad.stdout == ""


def test_qdrant_tls_settings(tmp_path: Path) -> None:
    import certifi

    assert tls_kwargs("http://q:6333", certifi.where(), False) == {}
    assert tls_kwargs("https://q:6333", None, False) == {"https": True, "verify": False}
    assert tls_kwargs("https://q:6333", None, True) == {"https": True}
    with_ca = tls_kwargs("https://q:6333", certifi.where(), False)  # the CA wins
    assert isinstance(with_ca["verify"], ssl.SSLContext)
    with pytest.raises(StoreUnavailableError, match="cannot read QDRANT_CA_CERT"):
        tls_kwargs("https://q:6333", str(tmp_path / "missing.pem"), True)
    # The settings reach the store (no request is made before first use).
    settings = Settings(qdrant_url="https://127.0.0.1:1", qdrant_verify_tls=False)
    make_store(settings).close()
    assert Settings(qdrant_ca_cert="/ca.pem").qdrant_ca_cert == "/ca.pem"


def test_settings_read_qdrant_tls_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QDRANT_CA_CERT", "/etc/ca.pem")
    monkeypatch.setenv("QDRANT_VERIFY_TLS", "false")
    monkeypatch.setenv("QDRANT_TIMEOUT", "5")
    s = Settings()
    assert (s.qdrant_ca_cert, s.qdrant_verify_tls, s.qdrant_timeout) == ("/etc/ca.pem", False, 5)


def test_one_version_for_the_service_its_image_and_the_role() -> None:
    """The package version is the image tag the Containerfile documents and the role deploys
    (a layout change bumps all three together)."""
    import yaml

    from rag_pipeline import __version__

    assert (
        f"rag-pipeline:{__version__}" in (ROOT / "services/rag_pipeline/Containerfile").read_text()
    )
    defaults = yaml.safe_load((ROOT / "roles/rag_pipeline/defaults/main.yml").read_text())
    assert str(defaults["rag_pipeline_image_tag"]) == __version__
