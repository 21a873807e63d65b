"""The deterministic lexicon: vocabulary synonyms found in the text, with negation,
uncertainty, leads, rhythm, heart axis and language, in the extraction schema.

It is the baseline the LLM is measured against and the cross-check in audits,
and it proposes the candidate findings the LLM verifies. It is never presented
as the LLM: its outputs carry ``extractor = "lexicon"``.

Cue lists are hand-written (NegEx-style) rather than taken from a clinical NLP
library: none of the well-kept ones covers German and Swedish ECG shorthand, and
the rules needed here fit on one screen.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kmerl.extraction.schema import Mention, ReportKnowledge, ReportLanguage, Status
from kmerl.extraction.text import FoldedText, fold, fold_term
from kmerl.extraction.vocabulary import HeartAxis, Vocabulary
from kmerl.leads import STANDARD_LEADS

_NEGATION_BEFORE = frozenset(
    "no not without absence kein keine keinen keiner keinem keines nicht ohne ej ingen inga inget inte utan".split()
)
_UNCERTAIN_BEFORE = frozenset(
    "possible possibly suspected suspect suggest suggests suggesting may might consider questionable"
    " verdacht moglich moglicherweise eventuell fraglich fragliche fraglicher dd misstankt mojlig mojligen overvag".split()
)
_UNCERTAIN_AFTER = re.compile(
    r"^[\s,]*(?:is |are |wird |ist )?(?:moglich|possible|fraglich|nicht (?:sicher )?auszuschliessen|nicht ausgeschlossen"
    r"|cannot be (?:entirely |completely )?(?:excluded|ruled out)|can ?not be excluded|kan (?:ej|inte) uteslutas"
    r"|bor overvagas|overvags|\?)"
)
_NEGATION_AFTER = re.compile(
    r"^[\s,]*(?:is |are |wird |ist )?(?:ausgeschlossen|excluded|ruled out|not seen|nicht nachweisbar|ej pavisad|uteslutet)"
)
# Phrases that contain a negation word but negate nothing the vocabulary names.
_PSEUDO_NEGATION = re.compile(
    r"alder ej bestamm?bar|ej bestamm?bar|not significantly changed|no change|nicht verandert|keine anderung"
)
_COORDINATORS = frozenset("or and oder und eller och nor sowie".split())
_SENTENCE_END = re.compile(r"\.(?=\s|$)|[;!?]")
_WORD = re.compile(r"[a-z0-9]+")
_WINDOW_WORDS = 5

_LEAD = r"(?:v[1-6]|avr|avl|avf|iii|ii|i)"
_LEAD_ITEM = rf"{_LEAD}(?:\s?-\s?v?[1-6])?(?:\s?,\s?[1-6](?![0-9]))*"
_LEADS_AFTER = re.compile(
    rf"^[\s,]*(?:(?P<prep>in|i|uber|over|lead|leads|ableitung|ableitungen)\s)?"
    rf"(?P<leads>{_LEAD_ITEM}(?:(?:\s?,\s?|\s(?:and|und|och)\s|\s){_LEAD_ITEM})*)(?![a-z0-9])"
)
_LEAD_NAMES = {name.lower(): name for name in STANDARD_LEADS}

_LANGUAGE_MARKERS: dict[str, frozenset[str]] = {
    "de": frozenset(
        "und oder nicht kein keine mit bei auf der die das sonst normales sinusrhythmus linkstyp rechtstyp steiltyp lagetyp"
        " verdacht wahrscheinlich moglich unspezifisches unspezifische abnormales jetzt unter nach schlechte qualitat".split()
    ),
    "sv": frozenset(
        "och eller inte ej inga ingen med vid sasom sinusrytm vanster hoger forlopp avvikande normalt eljest bor overvagas"
        " forandring el-axel sannolikt mojligen".split()
    ),
    "en": frozenset(
        "the and with of is are this may be sinus rhythm left right no possible probably suggest suggesting leads waves"
        " consistent otherwise definite likely due".split()
    ),
}


@dataclass(frozen=True, slots=True)
class Finding:
    """A vocabulary term found in the report, with what the lexicon decided about it."""

    entity_id: str
    start: int  # span of the original text
    end: int
    status: Status
    leads: tuple[str, ...]
    evidence: str


class Lexicon:
    """Compiled matchers for one vocabulary."""

    def __init__(self, vocabulary: Vocabulary) -> None:
        self.vocabulary = vocabulary
        self._entity_of = {fold_term(t): e.entity_id for e in vocabulary.entities for t in e.terms}
        self._entities = _alternation(self._entity_of)
        self._axis_of = {fold_term(t): axis for axis, terms in vocabulary.heart_axis_terms.items() for t in terms}
        self._axes = _alternation(self._axis_of)

    def findings(self, text: str) -> list[Finding]:
        """Every vocabulary term in the text, leftmost-longest, in order."""
        folded = fold(text)
        f = folded.folded
        sentence_ends = [m.end() for m in _SENTENCE_END.finditer(f)] + [len(f)]
        matches = list(self._entities.finditer(f))
        found: list[Finding] = []
        for index, match in enumerate(matches):
            start, end = match.span()
            sentence_start = max((e for e in sentence_ends if e <= start), default=0)
            sentence_end = next(e for e in sentence_ends if e >= end)
            previous = matches[index - 1] if index and matches[index - 1].end() > sentence_start else None
            window_start = previous.end() if previous else sentence_start
            status = _status(
                f[window_start:start], f[end:sentence_end], found[-1].status if previous and found else None
            )
            found.append(self._finding(folded, match, status, f[end:sentence_end]))
        return found

    def heart_axis(self, text: str) -> HeartAxis | None:
        match = self._axes.search(fold(text).folded)
        return self._axis_of[match.group(0)] if match else None  # type: ignore[return-value]

    def _finding(self, folded: FoldedText, match: re.Match[str], status: Status, after: str) -> Finding:
        start, end = folded.original_span(*match.span())
        return Finding(
            entity_id=self._entity_of[match.group(0)],
            start=start,
            end=end,
            status=status,
            leads=leads_after(after),
            evidence=folded.original[start:end],
        )


def _alternation(terms: dict[str, object]) -> re.Pattern[str]:
    # Longest first, so at any position the most specific term wins
    # ("unvollständiger rechtsschenkelblock" over "rechtsschenkelblock").
    ordered = sorted(terms, key=len, reverse=True)
    return re.compile(r"(?<![a-z0-9])(?:" + "|".join(map(re.escape, ordered)) + r")(?![a-z0-9])")


def _status(before: str, after: str, coordinated_with: Status | None) -> Status:
    before = _PSEUDO_NEGATION.sub(" ", before)
    words = _WORD.findall(before)[-_WINDOW_WORDS:]
    if coordinated_with in ("absent", "uncertain") and all(w in _COORDINATORS for w in words):
        return coordinated_with  # "no signs of ischaemia or infarction"
    if _UNCERTAIN_AFTER.search(after):
        return "uncertain"
    if _NEGATION_BEFORE.intersection(words):
        return "absent"
    if _NEGATION_AFTER.search(after) and not _PSEUDO_NEGATION.match(after.strip()):
        return "absent"
    if _UNCERTAIN_BEFORE.intersection(words):
        return "uncertain"
    return "present"


def leads_after(text: str) -> tuple[str, ...]:
    """Leads listed right after a finding ("in ii, iii, avf", "v4-v6", "v5,6")."""
    match = _LEADS_AFTER.match(text)
    if not match:
        return ()
    items = re.findall(_LEAD_ITEM, match.group("leads"))
    leads: list[str] = []
    for item in items:
        leads.extend(_expand(item.replace(" ", "")))
    explicit = match.group("prep") is not None or len(items) > 1 or any(lead.startswith(("v", "a")) for lead in leads)
    ordered = [_LEAD_NAMES[lead] for lead in dict.fromkeys(leads)]
    return tuple(ordered) if explicit else ()  # a lone "i" is the Swedish "in", not lead I


def _expand(item: str) -> list[str]:
    head, *more = item.split(",")
    leads = [head]
    if range_match := re.fullmatch(r"v([1-6])-v?([1-6])", head):
        low, high = sorted(map(int, range_match.groups()))
        leads = [f"v{n}" for n in range(low, high + 1)]
    leads += [f"v{digit}" for digit in more if head.startswith("v")]
    return leads


def detect_language(text: str) -> ReportLanguage:
    words = _WORD.findall(fold(text).folded.replace("el-axel", "el_axel"))
    hits = {lang: sum(w in markers for w in words) for lang, markers in _LANGUAGE_MARKERS.items()}
    total = sum(hits.values())
    if total == 0:
        return "unknown"
    present = [lang for lang, count in hits.items() if count >= max(1, 0.2 * total)]
    return present[0] if len(present) == 1 else "mixed"  # type: ignore[return-value]


def knowledge_from_findings(
    findings: list[Finding], text: str, lexicon: Lexicon, max_mentions: int
) -> tuple[ReportKnowledge, tuple[str, ...]]:
    """Report knowledge: one mention per (entity, status), first occurrence first."""
    first: dict[tuple[str, str], Finding] = {}
    for finding in findings:
        first.setdefault((finding.entity_id, finding.status), finding)
    kept = list(first.values())
    notes = (
        (f"{len(kept) - max_mentions} mentions beyond the first {max_mentions} dropped",)
        if len(kept) > max_mentions
        else ()
    )
    mentions = tuple(
        Mention(entity_id=f.entity_id, status=f.status, leads=f.leads, evidence=f.evidence) for f in kept[:max_mentions]
    )
    rhythm_ids = set(lexicon.vocabulary.ids_in("rhythm"))
    rhythm = next((m.entity_id for m in mentions if m.status == "present" and m.entity_id in rhythm_ids), None)
    knowledge = ReportKnowledge(
        language=detect_language(text), rhythm=rhythm, heart_axis=lexicon.heart_axis(text), mentions=mentions
    )
    return knowledge, notes
