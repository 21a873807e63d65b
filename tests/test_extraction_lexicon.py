"""The lexicon baseline on real report phrasing: synonyms in three languages,
negation, uncertainty, leads, axis, language, and every bad input."""

from pathlib import Path

import pytest

from kmerl.extraction import KnowledgeStore, LexiconExtractor, extract_reports, load_vocabulary
from kmerl.extraction.lexicon import Lexicon, detect_language
from kmerl.extraction.text import INVALID_UTF8_NOTE
from tests.extraction_support import bad_inputs

VOCABULARY = load_vocabulary()
LEXICON = Lexicon(VOCABULARY)


def _statuses(text: str) -> dict[str, str]:
    return {f.entity_id: f.status for f in LEXICON.findings(text)}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("kein Hinweis auf Infarkt", {"myocardial_infarction": "absent"}),
        ("no signs of ischemia", {"myocardial_ischemia": "absent"}),
        ("no signs of ischaemia or infarction", {"myocardial_ischemia": "absent", "myocardial_infarction": "absent"}),
        ("sinusrytm, inga tecken på förmaksflimmer", {"sinus_rhythm": "present", "atrial_fibrillation": "absent"}),
        ("ej vänster kammarhypertrofi", {"left_ventricular_hypertrophy": "absent"}),
        ("qrs(t) abnormal    anteroseptaler myokardschaden nicht auszuschliessen",
         {"abnormal_qrs": "present", "anteroseptal_myocardial_infarction": "uncertain"}),
        ("sinus rhythm. possible old inferior myocardial infarction.",
         {"sinus_rhythm": "present", "inferior_myocardial_infarction": "uncertain"}),
        ("avvikande qrs(t) förlopp    inferior infarkt bör övervägas", {"abnormal_qrs": "present", "inferior_myocardial_infarction": "uncertain"}),
        # "Ålder ej bestämmbar" (age not determinable) negates nothing that follows
        ("inferior infarkt     Ålder ej bestÄmmbar st-t sÄnkning", {"inferior_myocardial_infarction": "present", "st_depression": "present"}),
        ("sinusrhythmus unvollstÄndiger rechtsschenkelblock", {"sinus_rhythm": "present", "incomplete_right_bundle_branch_block": "present"}),
        ("sinusrhythmus mÄssige amplitudenkriterien f#r linkshypertrophie", {"sinus_rhythm": "present", "lvh_voltage_criteria": "present"}),
        # inflection and abbreviation stems, umlaut digraphs, compounds written apart
        ("qrs(t) abnorm    inferiorer infarkt", {"abnormal_qrs": "present", "inferior_myocardial_infarction": "present"}),
        ("tachykardes vorhofflimmern intraventr. leitungsstoerung", {"rapid_atrial_fibrillation": "present", "nonspecific_intraventricular_conduction_disturbance": "present"}),
        ("vollstÄndiger links schenkelblock", {"complete_left_bundle_branch_block": "present"}),
        ("vorhofflimmern/-flattern linkstyp", {"atrial_fibrillation_and_flutter": "present"}),
        # hedges and their scope: on the age of an infarct, over a list, back over "or"
        ("inferiorer infarkt     wahrscheinlich alt", {"inferior_myocardial_infarction": "present"}),
        ("st & t abnorm, wahrscheinlich    anteriore ischÄmie oder linksbelastung",
         {"st_changes": "present", "ischemia_anterior": "uncertain", "left_ventricular_strain": "uncertain"}),
        ("inferior ischaemia or infarction cannot be excluded", {"ischemia_inferior": "uncertain", "myocardial_infarction": "uncertain"}),
        ("linksschenkelblock linkshypertrophie mÖglich", {"complete_left_bundle_branch_block": "present", "left_ventricular_hypertrophy": "uncertain"}),
        ("st-t sÄnkning, sÅsom vid    anterolateral ischemi", {"st_depression": "present", "ischemia_anterolateral": "uncertain"}),
        ("no evidence of ischaemia. inferior infarct?", {"myocardial_ischemia": "absent", "inferior_myocardial_infarction": "uncertain"}),
        # a modifier joined to another shares its head noun
        ("probable old anterior and inferior infarcts", {"anteroseptal_myocardial_infarction": "uncertain", "inferior_myocardial_infarction": "uncertain"}),
    ],
)  # fmt: skip
def test_findings_and_their_status(text: str, expected: dict[str, str]) -> None:
    assert _statuses(text) == expected


def test_statements_no_term_covers_are_kept_verbatim_for_the_gap_report_and_the_llm() -> None:
    reading = LEXICON.read("Sinusrhythmus. Beschleunigter Sinusknoten-Rhythmus? 4.46   unbestÄtigter Bericht")
    assert [f.entity_id for f in reading.findings] == ["sinus_rhythm"]
    assert [u.text for u in reading.unmatched] == ["Beschleunigter Sinusknoten-Rhythmus"]
    assert not LEXICON.read("sinus rhythm. st segments are depressed in i, avl, v5,6.").unmatched


def test_terms_tell_the_language_where_function_words_are_missing() -> None:
    assert LEXICON.read("atrial fibrillation. low limb lead voltage.").language == "en"
    assert LEXICON.read("vorhofflimmern periphere niederspannung").language == "de"
    assert LEXICON.read("12345").language == "unknown"


def test_evidence_is_a_verbatim_span_of_the_original_text() -> None:
    text = "Sinusrhythmus   unvollstÄndiger  Rechtsschenkelblock"
    (first, second) = LEXICON.findings(text)
    assert text[first.start : first.end] == first.evidence == "Sinusrhythmus"
    assert second.evidence == "unvollstÄndiger  Rechtsschenkelblock"


@pytest.mark.parametrize(
    ("text", "entity", "leads"),
    [
        ("st segments are depressed in i, avl, v5,6.", "st_depression", ("I", "aVL", "V5", "V6")),
        ("st-senkung ii  iii avf  v4-v6  bei tachycardie", "st_depression", ("II", "III", "aVF", "V4", "V5", "V6")),
        ("q waves in ii, iii, avf consistent with old inferior myocardial infarction", "q_waves", ("II", "III", "aVF")),
        ("sinusrytm a-v block i st-t sänkning", "first_degree_av_block", ()),  # Swedish "i", not lead I
    ],
)
def test_leads_named_after_a_finding(text: str, entity: str, leads: tuple[str, ...]) -> None:
    assert next(f for f in LEXICON.findings(text) if f.entity_id == entity).leads == leads


def test_heart_axis_and_language() -> None:
    assert LEXICON.heart_axis("sinusrhythmus ueberdrehter linkstyp") == "left"
    assert LEXICON.heart_axis("sinusrhythmus rechtstyp") == "right"
    assert LEXICON.heart_axis("sinus rhythm. normal ecg") is None
    assert detect_language("sinusrhythmus linkstyp sonst normales ekg") == "de"
    assert detect_language("sinus rhythm. left axis deviation. otherwise normal ecg.") == "en"
    assert detect_language("sinusrytm vänster el-axel eljest normalt ekg") == "sv"
    assert detect_language("sinus rhythm. normal ecg. Edit: NORM 100, schlechte Qualität V2,V3,V5") == "mixed"
    assert detect_language("12345") == "unknown"


def test_bad_inputs_through_the_lexicon_extractor_are_all_accounted_for(tmp_path: Path) -> None:
    inputs = bad_inputs()
    store = KnowledgeStore(tmp_path)
    run = extract_reports(list(inputs.values()), LexiconExtractor(VOCABULARY, 12), store, VOCABULARY)
    by_name = dict(zip(inputs, run.report_keys, strict=True))
    assert run.inputs == 8 and run.unique == 7 and run.quarantined == 0  # empty and whitespace-only are the same report
    knowledge = store.knowledge(run.knowledge_version)
    assert set(knowledge) == set(run.report_keys)
    reports = {row["report_key"]: row for row in store.table("reports", run.knowledge_version).iter_rows(named=True)}

    assert knowledge[by_name["empty"]].mentions == () and any("empty" in n for n in reports[by_name["empty"]]["notes"])
    assert knowledge[by_name["whitespace"]] == knowledge[by_name["empty"]]
    assert knowledge[by_name["injection"]].mentions == ()  # no vocabulary term, no entity
    assert INVALID_UTF8_NOTE in reports[by_name["non_utf8"]]["notes"]
    assert "\ufffd" in reports[by_name["non_utf8"]]["report_text"]
    assert {m.entity_id for m in knowledge[by_name["non_utf8"]].mentions} == {"sinus_rhythm", "normal_ecg"}
    long = knowledge[by_name["long"]]
    assert [m.entity_id for m in long.mentions] == ["sinus_rhythm", "normal_ecg"]  # once each, not 4000 times
    assert [(m.entity_id, m.status) for m in knowledge[by_name["negated_de"]].mentions] == [
        ("myocardial_infarction", "absent")
    ]
    assert [(m.entity_id, m.status) for m in knowledge[by_name["negated_en"]].mentions] == [
        ("myocardial_ischemia", "absent")
    ]
    mixed = knowledge[by_name["mixed"]]
    assert mixed.language == "mixed" and mixed.rhythm == "sinus_rhythm" and mixed.heart_axis == "left"
    assert {m.entity_id for m in mixed.mentions} == {
        "sinus_rhythm",
        "left_axis_deviation",
        "left_ventricular_hypertrophy",
    }
    entities = store.entities(run.knowledge_version)
    assert entities.filter(entities["report_key"] == by_name["negated_de"])["status"].to_list() == ["absent"]
