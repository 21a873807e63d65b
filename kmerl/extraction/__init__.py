"""Knowledge extraction: free-text ECG reports -> normalised cardiac entities.

Library entry points (usable without Dagster)::

    from kmerl.extraction import (
        ExtractionConfig, KnowledgeStore, load_vocabulary, open_extractor, extract_reports, report_key,
    )

    vocabulary = load_vocabulary()
    store = KnowledgeStore(Path(".kmerl/store/report_knowledge"))
    with open_extractor(ExtractionConfig(), home=Path(".kmerl"), vocabulary=vocabulary) as extractor:
        run = extract_reports(texts, extractor, store, vocabulary)
    entities = store.entities(run.knowledge_version)   # report_key, entity_id, status
"""

from kmerl.extraction.audit import open_audit
from kmerl.extraction.config import EMBEDDED_MODEL, EngineConfig, ExtractionConfig, SamplingConfig, ServerConfig
from kmerl.extraction.extractor import (
    ExtractedReport,
    Extractor,
    LexiconExtractor,
    Provenance,
    QuarantinedReport,
    ReportOutcome,
)
from kmerl.extraction.factory import describe_extractor, open_backend, open_extractor
from kmerl.extraction.llm import LlmExtractor
from kmerl.extraction.prompts import DEFAULT_PROMPT, PROMPTS_DIR, Prompt, load_prompt
from kmerl.extraction.quality import (
    BootstrapConfig,
    QualityReport,
    group_differences,
    paired_difference,
    quality_markdown,
    score_extraction,
)
from kmerl.extraction.reports import source_reports
from kmerl.extraction.runner import ExtractionRun, extract_reports
from kmerl.extraction.schema import SCHEMA_VERSION, KnowledgeSchema, Mention, ReportKnowledge
from kmerl.extraction.store import KnowledgeStore
from kmerl.extraction.text import normalise_report, report_key
from kmerl.extraction.vocabulary import Vocabulary, VocabularyError, load_vocabulary

__all__ = [
    "DEFAULT_PROMPT",
    "EMBEDDED_MODEL",
    "PROMPTS_DIR",
    "SCHEMA_VERSION",
    "BootstrapConfig",
    "EngineConfig",
    "ExtractedReport",
    "ExtractionConfig",
    "ExtractionRun",
    "Extractor",
    "KnowledgeSchema",
    "KnowledgeStore",
    "LexiconExtractor",
    "LlmExtractor",
    "Mention",
    "Prompt",
    "Provenance",
    "QualityReport",
    "QuarantinedReport",
    "ReportKnowledge",
    "ReportOutcome",
    "SamplingConfig",
    "ServerConfig",
    "Vocabulary",
    "VocabularyError",
    "describe_extractor",
    "extract_reports",
    "group_differences",
    "load_prompt",
    "load_vocabulary",
    "normalise_report",
    "open_audit",
    "open_backend",
    "open_extractor",
    "paired_difference",
    "quality_markdown",
    "report_key",
    "score_extraction",
    "source_reports",
]
