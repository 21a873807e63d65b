"""The real in-process vLLM engine (CPU build) with the embedded SmolLM2-135M model,
on real PTB-XL reports: schema-valid output, the cache, prompt changes, bad inputs.

One engine serves the whole module (see ``vllm_engine`` in conftest.py). The model
is tiny: these tests assert what the design guarantees (valid, accounted for,
evidence in the text, cached), not how well it reads; bench/README.md measures that.
"""

import json
import shutil
from pathlib import Path

import polars as pl
import pytest

from kmerl.extraction import (
    DEFAULT_PROMPT,
    ExtractionConfig,
    KnowledgeSchema,
    KnowledgeStore,
    LlmExtractor,
    extract_reports,
    load_prompt,
    load_vocabulary,
    open_audit,
)
from kmerl.extraction.generation import Constraint, GenerationRequest
from kmerl.extraction.lexicon import Lexicon
from kmerl.extraction.prompts import PROMPTS_DIR
from kmerl.extraction.schema import STATUSES
from kmerl.extraction.text import INVALID_UTF8_NOTE, fold
from kmerl.extraction.validation import MentionFlag, QuarantineReason
from tests.extraction_support import bad_inputs, distinct_reports

VOCABULARY = load_vocabulary()
CONFIG = ExtractionConfig()


@pytest.fixture(scope="module")
def reports(ptbxl_root: Path) -> list[str]:
    return distinct_reports(ptbxl_root, 24)


def _extractor(engine, prompt: Path = DEFAULT_PROMPT) -> LlmExtractor:
    return LlmExtractor(engine, load_prompt(prompt), VOCABULARY, CONFIG)


def test_real_reports_give_schema_valid_knowledge_and_a_rerun_calls_the_llm_zero_times(
    vllm_engine, reports: list[str], tmp_path: Path
) -> None:
    store = KnowledgeStore(tmp_path)
    extractor = _extractor(vllm_engine)
    run = extract_reports(reports, extractor, store, VOCABULARY)
    assert run.unique == 24 and run.extracted == 24 and run.quarantined == 0
    assert run.finish_reasons == {"stop": run.llm_requests}  # the fixed-shape answer always ends
    lexicon = Lexicon(VOCABULARY)
    schema = KnowledgeSchema(VOCABULARY, CONFIG.max_mentions)
    languages = set()
    for row in store.table("reports", run.knowledge_version).iter_rows(named=True):
        knowledge = schema.validate_json(row["knowledge_json"])
        candidates = {f.entity_id for f in lexicon.findings(row["report_text"])}
        assert {
            m.entity_id for m in knowledge.mentions
        } == candidates  # the LLM decides statuses, never invents entities
        assert all(
            m.status in STATUSES and fold(m.evidence).folded in fold(row["report_text"]).folded
            for m in knowledge.mentions
        )
        languages.add(knowledge.language)
    assert {"de", "en", "sv"} <= languages
    assert store.table("mentions", run.knowledge_version)["evidence_found"].all()

    requests_before = vllm_engine.stats.requests
    again = extract_reports(reports + reports, extractor, store, VOCABULARY)
    assert again.llm_requests == 0 and vllm_engine.stats.requests == requests_before
    assert again.cached == 24 and again.knowledge_version == run.knowledge_version


class _KilledAfter(LlmExtractor):
    """Dies after ``batches`` batches, as a killed run does between two stored parts."""

    def __init__(self, batches: int, *args) -> None:
        super().__init__(*args)
        self.left = batches

    def extract(self, reports):
        if self.left == 0:
            raise KeyboardInterrupt
        self.left -= 1
        return super().extract(reports)


def test_the_same_reports_give_the_same_bytes_however_ordered_interrupted_and_resumed(
    vllm_engine, reports: list[str], tmp_path: Path
) -> None:
    """The engine's answers depend on their batch, so batches are fixed by content and each
    starts from a cold prefix cache: an interrupted run resumed with the reports in another
    order stores what an uninterrupted run stores."""
    config = ExtractionConfig(reports_per_part=5)
    prompt = load_prompt(DEFAULT_PROMPT)
    uninterrupted = KnowledgeStore(tmp_path / "uninterrupted")
    run = extract_reports(reports, LlmExtractor(vllm_engine, prompt, VOCABULARY, config), uninterrupted, VOCABULARY)
    assert run.llm_requests >= 5  # five batches of at most five reports

    resumed = KnowledgeStore(tmp_path / "resumed")
    with pytest.raises(KeyboardInterrupt):
        extract_reports(reports, _KilledAfter(2, vllm_engine, prompt, VOCABULARY, config), resumed, VOCABULARY)
    again = extract_reports(reports[::-1], LlmExtractor(vllm_engine, prompt, VOCABULARY, config), resumed, VOCABULARY)
    assert again.cached == 10 and again.knowledge_version == run.knowledge_version
    columns = ("report_key", "raw_output", "knowledge_json", "notes")
    tables = [
        store.table("reports", run.knowledge_version).select(columns).sort("report_key")
        for store in (uninterrupted, resumed)
    ]
    assert tables[0].equals(tables[1])
    mentions = [
        store.table("mentions", run.knowledge_version).sort("report_key", "position")
        for store in (uninterrupted, resumed)
    ]
    assert mentions[0].equals(mentions[1])


def test_a_changed_prompt_re_extracts_under_a_new_version_and_the_old_one_stays(
    vllm_engine, reports: list[str], tmp_path: Path
) -> None:
    store = KnowledgeStore(tmp_path / "store")
    first = extract_reports(reports[:8], _extractor(vllm_engine), store, VOCABULARY)
    old_rows = store.table("mentions", first.knowledge_version).sort("report_key", "position")
    edited = tmp_path / "checklist"
    shutil.copytree(DEFAULT_PROMPT, edited)
    (edited / "system.md").write_text((edited / "system.md").read_text() + "Answer for every finding listed.\n")
    second = extract_reports(reports[:8], _extractor(vllm_engine, edited), store, VOCABULARY)
    assert second.knowledge_version != first.knowledge_version
    assert second.cached == 0 and second.extracted == 8 and second.llm_requests == first.llm_requests
    assert store.table("mentions", first.knowledge_version).sort("report_key", "position").equals(old_rows)
    with open_audit(store) as db:
        versions = db.execute("SELECT knowledge_version, prompt_name FROM knowledge_versions ORDER BY 1").fetchall()
        assert {v for v, _ in versions} == {first.knowledge_version, second.knowledge_version}
        diff = db.execute(
            f"SELECT change FROM diff_versions('{first.knowledge_version}', '{second.knowledge_version}')"
        ).fetchall()
        assert {change for (change,) in diff} <= {"status_changed"}  # same candidates: only statuses can move


def test_every_bad_input_is_accounted_for_and_valid(vllm_engine, tmp_path: Path) -> None:
    inputs = bad_inputs()
    store = KnowledgeStore(tmp_path)
    run = extract_reports(list(inputs.values()), _extractor(vllm_engine), store, VOCABULARY)
    assert run.unique == 7 and run.extracted == 7 and run.quarantined == 0
    key = dict(zip(inputs, run.report_keys, strict=True))
    knowledge = store.knowledge(run.knowledge_version)
    notes = dict(store.table("reports", run.knowledge_version).select("report_key", "notes").iter_rows())
    assert run.llm_requests == 5  # blank reports and the injection (no vocabulary term) need no request
    assert knowledge[key["empty"]].mentions == () and knowledge[key["whitespace"]] == knowledge[key["empty"]]
    assert knowledge[key["injection"]].mentions == () and knowledge[key["injection"]].rhythm is None
    assert any("chunks of at most" in note for note in notes[key["long"]])  # read whole, not cut
    assert [m.entity_id for m in knowledge[key["long"]].mentions] == ["sinus_rhythm", "normal_ecg"]
    assert INVALID_UTF8_NOTE in notes[key["non_utf8"]]
    negated = {
        name: [(m.entity_id, m.evidence, m.status) for m in knowledge[key[name]].mentions]
        for name in ("negated_de", "negated_en")
    }
    assert negated == {
        "negated_de": [("myocardial_infarction", "Infarkt", "absent")],
        "negated_en": [("myocardial_ischemia", "ischemia", "absent")],
    }
    mixed = knowledge[key["mixed"]]
    assert mixed.language == "mixed" and {m.entity_id for m in mixed.mentions} == {
        "sinus_rhythm", "left_axis_deviation", "left_ventricular_hypertrophy"
    }  # fmt: skip


def test_free_form_json_strategy_is_validated_flagged_and_its_truncations_counted(
    vllm_engine, reports: list[str], tmp_path: Path
) -> None:
    store = KnowledgeStore(tmp_path)
    inputs = [*reports[:6], bad_inputs()["injection"], bad_inputs()["negated_de"]]
    run = extract_reports(inputs, _extractor(vllm_engine, PROMPTS_DIR / "json"), store, VOCABULARY)
    assert run.extracted + run.quarantined == 8
    assert sum(run.finish_reasons.values()) == run.llm_requests >= 8 and set(run.finish_reasons) <= {"stop", "length"}
    for row in store.table("quarantine", run.knowledge_version).iter_rows(named=True):
        assert row["reason"] in {r.value for r in QuarantineReason} and row["attempts"] == CONFIG.sampling.retries + 1
    texts = dict(store.table("reports", run.knowledge_version).select("report_key", "report_text").iter_rows())
    for row in store.table("mentions", run.knowledge_version).iter_rows(named=True):
        found = fold(row["evidence"]).folded in fold(texts[row["report_key"]]).folded
        assert row["evidence_found"] == found
        assert (row["flag"] in (None, MentionFlag.WITHHELD_IN_CONTEXT.value)) == found
    mentions = store.table("mentions", run.knowledge_version)
    entities = store.entities(run.knowledge_version)
    supported = mentions.filter(pl.col("flag").is_null()).select("report_key", "entity_id")
    only_flagged = (
        mentions.filter(pl.col("flag").is_not_null())
        .select("report_key", "entity_id")
        .join(supported, on=["report_key", "entity_id"], how="anti")
    )
    assert entities.join(only_flagged, on=["report_key", "entity_id"]).is_empty()  # no evidence, no entity
    for key, knowledge in store.knowledge(run.knowledge_version).items():
        assert knowledge.rhythm is None or knowledge.rhythm in set(
            entities.filter(entities["report_key"] == key)["entity_id"]
        )


def test_long_reports_are_read_in_chunks_and_their_last_finding_reaches_the_llm(
    vllm_engine, reports: list[str], tmp_path: Path
) -> None:
    """Budgeted with the model's tokenizer, not characters: a 100 KB report and a
    3,700-character one are read in chunks that fit, nothing is quarantined, and the
    finding stated at the very end is among those the LLM answered about."""
    extractor = _extractor(vllm_engine)
    huge = "sinusrhythmus normales ekg. " * 3600 + "linksschenkelblock"
    statement = "unauffällige erregungsrückbildung in den ableitungen v1 bis v6. "
    long = "sinusrhythmus. " + statement * 58 + "linksschenkelblock"
    assert len(huge) > 100_000 and 3_700 <= len(long) < 3_800
    whole = vllm_engine.count_chat_tokens(load_prompt(DEFAULT_PROMPT).messages({"report": long, "findings": ""}))
    assert whole > CONFIG.max_prompt_tokens  # the case: over the budget, under the old character cut
    store = KnowledgeStore(tmp_path)
    run = extract_reports([huge, long, *reports[:3]], extractor, store, VOCABULARY)
    assert run.quarantined == 0 and run.extracted == 5
    rows = {row["report_text"]: row for row in store.table("reports", run.knowledge_version).iter_rows(named=True)}
    for text in (huge, long):
        assert any("chunks of at most" in note for note in rows[text]["notes"])
        last_chunk = json.loads(rows[text]["raw_output"].splitlines()[-1])  # one answer per chunk asked
        assert "complete_left_bundle_branch_block" in last_chunk  # asked about, in its chunk
    lbbb = store.entities(run.knowledge_version).filter(pl.col("entity_id") == "complete_left_bundle_branch_block")
    assert {rows[huge]["report_key"], rows[long]["report_key"]} <= set(lbbb["report_key"])


def test_a_prompt_that_fills_the_context_is_not_sent_and_comes_back_with_why(vllm_engine) -> None:
    """The engine's own guard under the budget: a request it would refuse fails alone."""
    messages = load_prompt(DEFAULT_PROMPT).messages({"report": "sinusrhythmus. " * 2000, "findings": "- x: y"})
    ok = load_prompt(DEFAULT_PROMPT).messages({"report": "sinusrhythmus.", "findings": "- sinus_rhythm: sinus"})
    constraint = Constraint(choices=STATUSES)
    requests = [GenerationRequest(tuple(m), constraint, 4, 0.0, 0) for m in (messages, ok)]
    refused, answered = vllm_engine.generate(requests)
    assert refused.error and "context of 2048" in refused.error and refused.finish_reason is None
    assert answered.error is None and answered.text in STATUSES
