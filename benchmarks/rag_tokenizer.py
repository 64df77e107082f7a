"""BM25 tokenizers on CISI (issue #14, item 3): the sparse path alone, no embedding model.

Indexes every CISI document's BM25 vector (the service's BM25Encoder) in embedded Qdrant with
the ``idf`` modifier, once with the 0.2.0 tokenizer (``ascii-v1``: ``[a-z0-9]+`` of the
lower-cased text) and once with the current one, and scores the 76 judged queries: nDCG@10,
Recall@100, and how many documents and queries tokenize differently. Dense scores do not depend
on the tokenizer, so when no CISI text tokenizes differently the hybrid figures of rag_quality.py
cannot change either. Quick (a minute on 2 busy cores); re-run any time:

    PYTHONPATH=services/rag_pipeline .venv/bin/python benchmarks/rag_tokenizer.py
"""

from __future__ import annotations

import re
from collections.abc import Callable

from qdrant_client import QdrantClient, models
from rag_common import load_cisi, ndcg_at, recall_at

from rag_pipeline import sparse
from rag_pipeline.sparse import LEGACY_TOKENIZER, STOP_WORDS, TOKENIZER, BM25Encoder

_ASCII = re.compile(r"[a-z0-9]+")


def ascii_v1(text: str) -> list[str]:
    return [t for t in _ASCII.findall(text.lower()) if t not in STOP_WORDS]


def evaluate(tokenize: Callable[[str], list[str]]) -> tuple[float, float]:
    docs, queries, rel = load_cisi()
    current = sparse.tokenize
    sparse.tokenize = tokenize  # BM25Encoder calls the module's tokenize
    try:
        enc = BM25Encoder()
        client = QdrantClient(":memory:")
        params = models.SparseVectorParams(modifier=models.Modifier.IDF)
        client.create_collection("cisi", vectors_config={}, sparse_vectors_config={"b": params})
        points = []
        for n, (doc_id, text) in enumerate(docs.items()):
            v = enc.encode_document(text)
            vector = models.SparseVector(indices=v.indices, values=v.values)
            points.append(models.PointStruct(id=n, vector={"b": vector}, payload={"d": doc_id}))
        client.upsert("cisi", points)
        nd, rc = [], []
        for qid, text in queries.items():
            q = enc.encode_query(text)
            query = models.SparseVector(indices=q.indices, values=q.values)
            hits = client.query_points("cisi", query=query, using="b", limit=100).points
            ranked = [str((h.payload or {})["d"]) for h in hits]
            nd.append(ndcg_at(ranked, rel[qid]))
            rc.append(recall_at(ranked, rel[qid]))
    finally:
        sparse.tokenize = current
    return sum(nd) / len(nd), sum(rc) / len(rc)


if __name__ == "__main__":
    docs, queries, _ = load_cisi()
    changed_docs = sum(ascii_v1(t) != sparse.tokenize(t) for t in docs.values())
    changed_queries = sum(ascii_v1(t) != sparse.tokenize(t) for t in queries.values())
    print(
        f"tokenized differently: {changed_docs} of {len(docs)} documents, "
        f"{changed_queries} of {len(queries)} queries"
    )
    for label, tok in ((LEGACY_TOKENIZER, ascii_v1), (TOKENIZER, sparse.tokenize)):
        n, r = evaluate(tok)
        print(f"BM25 {label:12s} nDCG@10={n:.4f} Recall@100={r:.4f}", flush=True)
