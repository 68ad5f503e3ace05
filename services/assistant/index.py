"""The in-memory BM25 index over the published content (help articles, announcements, products'
service notes), one per process, held in `Deps`.

Documents are segmented once when they arrive; the BM25 matrices are rebuilt lazily on the next
search after a change (a few milliseconds for a help center of hundreds of documents), so an
update costs nothing until someone asks.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass

import bm25s
import numpy as np

from services.assistant import domain
from services.assistant.domain import Hit, SourceKind

# bm25s logs every rebuild at DEBUG, with the request's trace: noise in every service log.
logging.getLogger("bm25s").setLevel(logging.WARNING)

TITLE_WEIGHT = 3
"""A title says what the document is about: its words count this many times."""


@dataclass(frozen=True)
class Doc:
    key: str
    kind: SourceKind
    id: str
    title: str
    body: str
    fingerprint: str
    words: tuple[str, ...]


def doc_key(kind: str, source_id: str) -> str:
    return f"{kind}:{source_id}"


class KnowledgeIndex:
    def __init__(self) -> None:
        self._docs: dict[str, Doc] = {}
        self._order: list[str] = []
        self._retriever: bm25s.BM25 | None = None
        self._idf: dict[str, float] = {}
        self._sets: list[set[str]] = []
        self._dirty = True

    def __len__(self) -> int:
        return len(self._docs)

    def __contains__(self, key: str) -> bool:
        return key in self._docs

    def fingerprint(self, key: str) -> str | None:
        doc = self._docs.get(key)
        return doc.fingerprint if doc else None

    def put(self, kind: SourceKind, source_id: str, title: str, body: str, fingerprint: str) -> bool:
        """Add or replace a document; False when the same version is already there."""
        key = doc_key(kind, source_id)
        if self.fingerprint(key) == fingerprint:
            return False
        words = tuple(domain.tokens(title)) * TITLE_WEIGHT + tuple(domain.tokens(body))
        self._docs[key] = Doc(key, kind, source_id, title, body, fingerprint, words)
        self._dirty = True
        return True

    def remove(self, key: str) -> bool:
        if self._docs.pop(key, None) is None:
            return False
        self._dirty = True
        return True

    def _rebuild(self) -> None:
        self._order = [k for k in self._docs if self._docs[k].words]
        corpus = [list(self._docs[k].words) for k in self._order]
        self._sets = [set(words) for words in corpus]
        n = len(corpus)
        df: Counter[str] = Counter()
        for words in self._sets:
            df.update(words)
        self._idf = {w: domain.idf_of(c, n) for w, c in df.items()}
        if corpus:
            retriever = bm25s.BM25()
            retriever.index(corpus, show_progress=False)
            self._retriever = retriever
        else:
            self._retriever = None
        self._dirty = False

    def search(self, query: list[str], k: int = 3) -> list[Hit]:
        """The best `k` documents for the question's words, with their BM25 score and how much of
        the question each covers."""
        if self._dirty:
            self._rebuild()
        if self._retriever is None or not query:
            return []
        scores = np.asarray(self._retriever.get_scores(query), dtype=float)
        if not scores.size or float(scores.max()) <= 0:
            return []
        best = np.argsort(-scores)[:k]
        unknown = domain.idf_of(0, len(self._order))
        hits = []
        for i in best:
            if scores[i] <= 0:
                break
            doc = self._docs[self._order[int(i)]]
            cover = domain.coverage(query, self._sets[int(i)], self._idf, unknown)
            hits.append(Hit(doc.kind, doc.id, doc.title, doc.body, float(scores[i]), cover))
        return hits
