"""In-process sweep for rag_long.py: chunking and fusion candidates without the HTTP service.

Re-uses the service's own code paths (chunk_document/chunker_config with the bundled MiniLM's
tokenizer, LocalEmbedder.embed, BM25Encoder, best_per_document, fuse) and replaces only the
store: exact dense search (embedded Qdrant searches exhaustively at this size) and BM25 with
Qdrant's ``idf`` modifier (ln((N - n + 0.5) / (n + 0.5) + 1) over the collection's chunks).
Chunk embeddings are cached on disk per set and chunk configuration (``--cache``, default
/tmp/rag-long-sweep), so a candidate costs seconds once its chunks are embedded.

The figures should match rag_long.py's service rows up to ties; the chosen default is always
confirmed with rag_long.py (the service through HTTP).

Usage: .venv/bin/python benchmarks/rag_long_sweep.py [--sets 14:6,0:1] [--sizes 0:None,126:None]
"""

from __future__ import annotations

import hashlib
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
from rag_common import load_cisi, ndcg_at, recall_at
from rag_long import long_documents
from scipy import sparse as sp

from rag_pipeline.chunking import chunk_document, chunker_config
from rag_pipeline.embeddings import LocalEmbedder
from rag_pipeline.pipeline import best_per_document
from rag_pipeline.retrieval import fuse
from rag_pipeline.sparse import BM25Encoder
from rag_pipeline.stores.base import Hit

CACHE = Path("/tmp/rag-long-sweep")
DEPTH = 100  # fusion_candidates: chunks fetched from each list


class Index:
    """One set chunked with one configuration: dense vectors and BM25 chunk vectors."""

    def __init__(
        self, docs: dict[str, str], embedder: LocalEmbedder, size: int, overlap: int | None
    ) -> None:
        counter = embedder.token_counter()
        self.config = chunker_config(counter, size, overlap)
        self.owner: list[str] = []
        texts: list[str] = []
        for doc_id, text in docs.items():
            for chunk in chunk_document(text, counter, self.config):
                texts.append(chunk.embed_text)
                self.owner.append(doc_id)
        digest = hashlib.sha256(("\x00".join(texts) + repr(self.config)).encode("utf-8"))
        path = CACHE / f"{digest.hexdigest()[:16]}.npy"
        if path.exists():
            self.dense = np.load(path)
        else:
            CACHE.mkdir(parents=True, exist_ok=True)
            self.dense = embedder.embed(texts)
            np.save(path, self.dense)
        self.bm25 = BM25Encoder()  # the service's defaults (k1 1.2, b 0.75, avgdl 100)
        # BM25 over chunks (chunker version 1) and over whole documents (the service now).
        self.chunk_bm25 = self._bm25(texts)
        self.doc_ids = list(docs)
        self.doc_bm25 = self._bm25([docs[d] for d in self.doc_ids])
        self.texts = texts
        self.words = sum(len(t.split()) for t in texts)

    def _bm25(self, units: list[str]) -> tuple[dict[int, int], sp.csr_matrix, np.ndarray]:
        vocab: dict[int, int] = {}
        rows, cols, vals = [], [], []
        for j, text in enumerate(units):
            vec = self.bm25.encode_document(text)
            for term, value in zip(vec.indices, vec.values, strict=True):
                rows.append(vocab.setdefault(term, len(vocab)))
                cols.append(j)
                vals.append(value)
        tf = sp.csr_matrix((vals, (rows, cols)), shape=(len(vocab), len(units)))
        n = len(units)
        df = np.diff(tf.indptr)
        return vocab, tf, np.log((n - df + 0.5) / (df + 0.5) + 1)

    def dense_scores(self, qvec: np.ndarray) -> np.ndarray:
        return np.asarray(self.dense @ qvec)

    def sparse_scores(self, query: str, level: str = "document") -> np.ndarray:
        vocab, tf, idf = self.doc_bm25 if level == "document" else self.chunk_bm25
        q = self.bm25.encode_query(query)
        scores = np.zeros(tf.shape[1])
        for term, weight in zip(q.indices, q.values, strict=True):
            row = vocab.get(term)
            if row is None:
                continue
            lo, hi = tf.indptr[row], tf.indptr[row + 1]
            scores[tf.indices[lo:hi]] += weight * idf[row] * tf.data[lo:hi]
        return scores

    def hits(self, scores: np.ndarray, depth: int = DEPTH) -> list[Hit]:
        """The store's top ``depth`` points (score > 0 for sparse, as Qdrant returns);
        a negative depth: the top chunks of -depth distinct documents."""
        owner = self.owner if len(scores) == len(self.owner) else self.doc_ids
        order = np.argsort(-scores, kind="stable")
        if depth < 0:
            seen: set[str] = set()
            top = []
            for j in order:
                if len(seen) >= -depth and owner[j] not in seen:
                    break
                seen.add(owner[j])
                top.append(j)
        else:
            top = order[:depth]
        return [Hit(str(j), float(scores[j]), {"document_id": owner[j]}) for j in top]


def doc_ids(hits: list[Hit]) -> list[str]:
    return [h.id.split("\x00", 1)[1] if "\x00" in h.id else h.payload["document_id"] for h in hits]


def sum_per_document(hits: list[Hit]) -> list[Hit]:
    """Each document's summed chunk scores among the hits, best first."""
    total: Counter[str] = Counter()
    first: dict[str, Hit] = {}
    for h in hits:
        doc = str(h.payload["document_id"])
        total[doc] += h.score
        first.setdefault(doc, h)
    return [Hit(f"doc\x00{d}", s, first[d].payload) for d, s in total.most_common()]


Method = Callable[[Index, str, np.ndarray], list[str]]


def method(
    fusion: str = "zscore",
    dense_weight: float = 0.65,
    sparse_agg: str = "max",
    depth: int = DEPTH,
    strategy: str = "hybrid",
    sparse_level: str = "document",
) -> Method:
    def run(index: Index, query: str, qvec: np.ndarray) -> list[str]:
        if fusion == "chunk-zscore":
            d = index.hits(index.dense_scores(qvec), depth)
            chunk_sparse = index.sparse_scores(query, "chunk")
            sp_hits = [h for h in index.hits(chunk_sparse, depth) if h.score > 0]
            fused = fuse(d, sp_hits, "zscore", dense_weight)
            best = best_per_document([Hit(c.id, c.score, c.payload) for c in fused])
            return doc_ids(best)[:100]
        dense = best_per_document(index.hits(index.dense_scores(qvec), depth))
        s = index.sparse_scores(query, sparse_level)
        raw = index.hits(s, depth)
        raw = [h for h in raw if h.score > 0]
        agg = sum_per_document if sparse_agg == "sum" else best_per_document
        sparse_hits = agg(raw)
        if strategy == "dense":
            return doc_ids(dense)[:100]
        if strategy == "sparse":
            return doc_ids(sparse_hits)[:100]
        return [c.id.split("\x00", 1)[1] for c in fuse(dense, sparse_hits, fusion, dense_weight)][
            :100
        ]

    return run


METHODS: dict[str, Method] = {
    "default (zscore 0.65, dense MaxP + document BM25)": method(),
    "dense only (MaxP)": method(strategy="dense"),
    "sparse only (document BM25)": method(strategy="sparse"),
    "chunk BM25 only (MaxP)": method(strategy="sparse", sparse_level="chunk"),
    "chunk BM25 only (sum of a document's chunks)": method(
        strategy="sparse", sparse_level="chunk", sparse_agg="sum"
    ),
    "zscore 0.65, chunk BM25 MaxP (chunker v1)": method(sparse_level="chunk"),
    "RRF k=60, document BM25": method(fusion="rrf"),
    "RRF k=60, chunk BM25 MaxP": method(fusion="rrf", sparse_level="chunk"),
    "zscore 0.65, chunk BM25 summed": method(sparse_level="chunk", sparse_agg="sum"),
    "zscore 0.5, document BM25": method(dense_weight=0.5),
    "default, 300 chunks per list": method(depth=300),
    "default, chunks of 100 documents per list": method(depth=-100),
    "chunk-level zscore (chunk BM25), then MaxP": method(fusion="chunk-zscore"),
}


def main() -> None:
    sets = [(14, 6), (0, 1)]
    sizes: list[tuple[int, int | None]] = [(0, None), (254, None), (126, 63)]
    if "--sets" in sys.argv:
        spec = sys.argv[sys.argv.index("--sets") + 1]
        sets = [(int(a), int(b)) for a, b in (p.split(":") for p in spec.split(","))]
    if "--sizes" in sys.argv:
        spec = sys.argv[sys.argv.index("--sizes") + 1]
        sizes = [
            (int(a), None if b == "None" else int(b))
            for a, b in (p.split(":") for p in spec.split(","))
        ]
    embedder = LocalEmbedder()
    docs, queries, rel = load_cisi()
    qids = list(queries)
    qvecs = embedder._encode([queries[q] for q in qids])
    for seed, join in sets:
        long_docs, qrels = long_documents(docs, rel, seed, join)
        for size, overlap in sizes:
            index = Index(long_docs, embedder, size, overlap)
            print(
                f"== seed {seed} join {join}: size {index.config.size} overlap "
                f"{index.config.overlap}: {len(index.texts)} chunks, "
                f"{index.words / len(index.texts):.0f} words each",
                flush=True,
            )
            for label, run in METHODS.items():
                nd, rc = [], []
                for k, q in enumerate(qids):
                    ranked = run(index, queries[q], qvecs[k])
                    nd.append(ndcg_at(ranked, qrels[q]))
                    rc.append(recall_at(ranked, qrels[q]))
                print(
                    f"   {label:42s} nDCG@10={sum(nd) / len(nd):.4f} R@100={sum(rc) / len(rc):.4f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
