"""Extracting a report corpus (:mod:`kmerl.corpora`) end to end: read, extract, link
records to reports, account for every row, assess.

One call serves ``kmerl extract`` and the ``report_corpus_knowledge`` asset. The
signal store is never touched: corpora are reports only.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from kmerl.corpora import CorpusRows, PtbXlReports, ReportTable, read_corpus
from kmerl.extraction.assessment import Assessment, assess
from kmerl.extraction.extractor import Extractor
from kmerl.extraction.runner import ExtractionRun, extract_reports
from kmerl.extraction.store import KnowledgeStore, SourceKnowledge
from kmerl.extraction.vocabulary import Vocabulary
from kmerl.progress import ProgressCallback


@dataclass(frozen=True, slots=True)
class CorpusExtraction:
    rows: CorpusRows
    run: ExtractionRun
    published: SourceKnowledge  # what the corpus's records now read (KnowledgeStore.current)
    assessment: Assessment

    @property
    def accounted(self) -> bool:
        """Every row is a record or a rejected row; every distinct report extracted or quarantined."""
        return self.rows.rows_in == self.rows.records.height + self.rows.rejected.height and (
            self.run.unique == self.run.cached + self.run.extracted + self.run.quarantined
        )


def extract_corpus(
    corpus: PtbXlReports | ReportTable,
    extractor: Extractor,
    store: KnowledgeStore,
    vocabulary: Vocabulary,
    *,
    name: str,
    compare_with_lexicon: bool = True,
    on_progress: ProgressCallback | None = None,
) -> CorpusExtraction:
    rows = read_corpus(corpus)
    run = extract_reports(
        rows.records["report"].to_list(), extractor, store, vocabulary,
        on_progress=on_progress,
    )  # fmt: skip
    records = rows.records.with_columns(pl.Series("report_key", run.report_keys, dtype=pl.String))
    store.write_records(corpus.name, records)
    store.write_rejected(corpus.name, rows.rejected)
    published = store.publish(corpus.name, run.knowledge_version)
    assessment = assess(
        store,
        records,
        run.knowledge_version,
        vocabulary,
        name=name,
        compare_with_lexicon=compare_with_lexicon,
        system=corpus.label_system if isinstance(corpus, ReportTable) else "scp",
    )
    return CorpusExtraction(rows, run, published, assessment)
