"""The vocabulary file, report keys and prompt files: loaded, validated, versioned."""

import csv
import json
import shutil
from pathlib import Path

import pytest

from kmerl.extraction import (
    DEFAULT_PROMPT,
    PROMPTS_DIR,
    ExtractionConfig,
    KnowledgeSchema,
    VocabularyError,
    describe_extractor,
    load_prompt,
    load_vocabulary,
    normalise_report,
    report_key,
)
from kmerl.extraction.prompts import PromptError
from kmerl.extraction.vocabulary import DEFAULT_VOCABULARY


def test_every_scp_statement_and_challenge_snomed_code_maps_to_exactly_one_entity(
    ptbxl_root: Path, cinc_root: Path
) -> None:
    vocabulary = load_vocabulary()
    scp = [row[""] for row in csv.DictReader((ptbxl_root / "scp_statements.csv").open())]
    snomed = [
        row["SNOMEDCTCode"]
        for name in ("dx_mapping_scored.csv", "dx_mapping_unscored.csv")
        for row in csv.DictReader((cinc_root / name).open())
    ]
    assert len(scp) == 71 and len(snomed) == 133
    assert all(vocabulary.entity_for_code("scp", code) for code in scp)
    assert all(vocabulary.entity_for_code("snomed", code) for code in snomed)
    # merged where both name the same finding
    assert vocabulary.entity_for_code("scp", "CRBBB") == vocabulary.entity_for_code("snomed", "59118001")
    assert vocabulary.entity_for_code("scp", "AFIB") == vocabulary.entity_for_code("snomed", "164889003")
    assert len(vocabulary.entities) < 71 + 133


def test_vocabulary_frame_has_what_the_model_stage_needs() -> None:
    vocabulary = load_vocabulary()
    frame = vocabulary.frame()
    assert frame.height == len(vocabulary.entities) and frame["entity_id"].is_unique().all()
    assert {"entity_id", "name", "synonyms", "scp_codes", "snomed_codes", "synonyms_de", "synonyms_sv"} <= set(
        frame.columns
    )
    sinus = frame.filter(frame["entity_id"] == "sinus_rhythm").row(0, named=True)
    assert sinus["name"] == "sinus rhythm" and sinus["scp_codes"] == ["SR"] and "sinusrhythmus" in sinus["synonyms_de"]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda doc: doc["entities"].append(dict(doc["entities"][0])), "repeated entity ids"),
        (lambda doc: doc["entities"][1].update(broader="no_such_entity"), "no_such_entity"),
        (lambda doc: doc["entities"][1]["synonyms"].update(en=["normal ecg"]), "shared by several entities"),
        (lambda doc: doc["entities"][3]["codes"].update(scp=["SR"]), "repeated scp codes"),
        (lambda doc: doc["entities"][0].update(entity_id="Not An Id"), "entity_id"),
        (
            lambda doc: doc["withheld"].append(
                {
                    "entity_id": "no_such_entity",
                    "status": "present",
                    "machine_report": False,
                    "mentions": 20,
                    "precision": 0.1,
                }
            ),
            "withheld contexts name entities not in the vocabulary",
        ),
    ],
)
def test_a_broken_vocabulary_file_is_rejected_naming_the_file(tmp_path: Path, edit, message: str) -> None:
    document = json.loads(DEFAULT_VOCABULARY.read_text())
    edit(document)
    path = tmp_path / "vocabulary.json"
    path.write_text(json.dumps(document))
    with pytest.raises(VocabularyError, match=message) as raised:
        load_vocabulary(path)
    assert str(path) in str(raised.value)


def test_report_keys_ignore_case_and_spacing_but_not_words() -> None:
    assert report_key("Sinusrhythmus   normales EKG ") == report_key("sinusrhythmus normales ekg")
    assert report_key(b"sinusrhythmus normales ekg") == report_key("sinusrhythmus normales ekg")
    assert report_key("sinusrhythmus normales ekg") != report_key("sinusrhythmus kein normales ekg")
    assert report_key(None) == report_key("") == report_key("   ")
    assert normalise_report("A\u0308b  \n c") == "äb c"  # NFC: a decomposed umlaut equals the composed one


def test_schema_enumerates_vocabulary_ids_and_bounds_the_mention_list() -> None:
    vocabulary = load_vocabulary()
    schema = KnowledgeSchema(vocabulary, max_mentions=5).json_schema
    mention = schema["$defs"]["Mention"]
    assert set(mention["properties"]["entity_id"]["enum"]) == set(vocabulary.ids)
    assert schema["properties"]["mentions"]["maxItems"] == 5
    assert mention["additionalProperties"] is False


def test_bundled_prompts_load_and_any_edit_changes_the_prompt_version(tmp_path: Path) -> None:
    for folder in sorted(PROMPTS_DIR.iterdir()):
        prompt = load_prompt(folder)
        assert prompt.examples and prompt.strategy in ("checklist", "verify", "json")
    copy = tmp_path / "checklist"
    shutil.copytree(DEFAULT_PROMPT, copy)
    config = ExtractionConfig(prompt=copy)
    before = describe_extractor(config).knowledge_version
    assert (
        before == describe_extractor(ExtractionConfig()).knowledge_version
    )  # the folder's content counts, not its path
    (copy / "system.md").write_text((copy / "system.md").read_text() + "\nBe brief.\n")
    after = describe_extractor(config).knowledge_version
    assert after != before
    sampling = config.sampling.model_copy(update={"temperature": 0.3})
    assert describe_extractor(config.model_copy(update={"sampling": sampling})).knowledge_version not in (before, after)
    assert describe_extractor(config.model_copy(update={"model": "some/other-model"})).knowledge_version != after


def test_the_in_process_engines_answer_settings_change_the_prompt_version_its_resources_do_not() -> None:
    config = ExtractionConfig()
    version = describe_extractor(config).knowledge_version

    def with_engine(**update: object) -> str:
        engine = config.engine.model_copy(update=update)
        return describe_extractor(config.model_copy(update={"engine": engine})).knowledge_version

    assert with_engine(enforce_eager=not config.engine.enforce_eager) != version  # compiled answers differ
    assert with_engine(dtype="float32") != version
    assert with_engine(kv_cache_gib=8.0, cpu_threads_bind="0") == version
    server = config.model_copy(update={"backend": "server"})
    server_version = describe_extractor(server).knowledge_version
    assert server_version != version  # a server's answers come from its own engine and batches
    compiled = server.engine.model_copy(update={"enforce_eager": False})
    assert describe_extractor(server.model_copy(update={"engine": compiled})).knowledge_version == server_version


def test_a_broken_prompt_folder_names_the_file(tmp_path: Path) -> None:
    copy = tmp_path / "checklist"
    shutil.copytree(DEFAULT_PROMPT, copy)
    (copy / "examples.jsonl").write_text('{"variables": {"report": "x"}, "answer": "present"}\n{not json\n')
    with pytest.raises(PromptError, match=r"examples.jsonl:2"):
        load_prompt(copy)
    (copy / "examples.jsonl").write_text('{"variables": {"report": "x"}, "answer": "present"}\n')
    with pytest.raises(PromptError, match="findings"):
        load_prompt(copy)  # the example lacks a placeholder user.md uses
