"""The deterministic lexicon: vocabulary terms found in the text, with negation,
uncertainty, leads, rhythm, heart axis and language, in the extraction schema.

It is the baseline the LLM is measured against and the reading the LLM adds to:
every report gets the lexicon's findings, and the statements it could not map to
any vocabulary term (:attr:`Reading.unmatched`) are what the LLM is asked about and
what the vocabulary-gap report counts. Its outputs carry ``extractor = "lexicon"``.
Matching is described in :mod:`kmerl.extraction.terms`, cue scopes in
:mod:`kmerl.extraction.cues`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from kmerl.extraction.cues import COORDINATORS, CueMatcher
from kmerl.extraction.schema import Mention, ReportKnowledge, ReportLanguage, Status
from kmerl.extraction.terms import Match, PhraseIndex, Token, term_keys, tokenize
from kmerl.extraction.text import FoldedText, fold
from kmerl.extraction.vocabulary import HeartAxis, Vocabulary
from kmerl.leads import STANDARD_LEADS

_WORD = re.compile(r"[a-z0-9]+")
_LEAD = r"(?:v[1-6]|avr|avl|avf|iii|ii|i)"
_LEAD_ITEM = rf"{_LEAD}(?:\s?-\s?v?[1-6])?(?:\s?,\s?[1-6](?![0-9]))*"
_LEADS_AFTER = re.compile(
    rf"^[\s,]*(?:(?P<prep>in|i|uber|over|lead|leads|ableitung|ableitungen)\s)?"
    rf"(?P<leads>{_LEAD_ITEM}(?:(?:\s?,\s?|\s(?:and|und|och)\s|\s){_LEAD_ITEM})*)(?![a-z0-9])"
)
_LEAD_NAMES = {name.lower(): name for name in STANDARD_LEADS}
# Function words a statement may hold besides its findings; on their own they are no gap.
_FILLER = (
    frozenset(
        "the a an of in on at to is are be was were this that these there by for as from seen noted also leads lead"
        " der die das des dem den ein eine einer eines im am bei von vom zu zum zur nach als ist sind auch ableitung"
        " ableitungen ablt i pa av en ett som vid till ar har fran over avl"
        " due consistent finding findings cause evident exclude otherwise minor throughout widespread significance"
        " uncertain increased risk developing compared previous previously tracing now more less marked slightly"
        " slight mild moderate diskret diskrete leicht leichte deutlich deutliche".split()
    )
    | COORDINATORS
)
_MIN_GAP_WORD = 3  # a gap holds at least one word this long ("t abnorm" yes, "in" no)

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


@dataclass(frozen=True, slots=True)
class Fragment:
    """A stretch of a statement that no vocabulary term, cue or lead list accounts for."""

    start: int  # span of the original text
    end: int
    text: str  # verbatim


@dataclass(frozen=True, slots=True)
class Reading:
    """Everything the lexicon reads in one report."""

    findings: tuple[Finding, ...]
    unmatched: tuple[Fragment, ...]
    heart_axis: HeartAxis | None
    language: ReportLanguage


class Lexicon:
    """Compiled matchers for one vocabulary."""

    def __init__(self, vocabulary: Vocabulary) -> None:
        self.vocabulary = vocabulary
        self._entities: PhraseIndex[str] = PhraseIndex(
            (term, e.entity_id) for e in vocabulary.entities for term in e.terms
        )
        self._term_languages = _term_languages(vocabulary)
        self._axes: PhraseIndex[HeartAxis] = PhraseIndex(
            (term, axis) for axis, terms in vocabulary.heart_axis_terms.items() for term in terms
        )
        self._non_findings: PhraseIndex[None] = PhraseIndex((term, None) for term in vocabulary.non_findings)
        self._cues = CueMatcher()

    def read(self, text: str) -> Reading:
        folded = fold(text)
        tokens = tokenize(folded)
        matches = self._entities.scan(tokens)
        statuses = self._cues.statuses(tokens, folded.folded, [(m.first, m.last) for m in matches])
        findings = []
        covered: set[int] = set()
        for match, status in zip(matches, statuses, strict=True):
            finding, lead_tokens = self._finding(folded, tokens, match, status)
            if elided := self._elided(tokens, match, covered):
                findings.append(self._finding(folded, tokens, elided, status)[0])
                covered.add(elided.first)
            findings.append(finding)
            covered.update(range(match.first, match.last + lead_tokens))
        axes = self._axes.scan(tokens)
        for other in (*axes, *self._non_findings.scan(tokens), *self._cues.covered(tokens)):
            covered.update(range(other.first, other.last))
        return Reading(
            findings=tuple(findings),
            unmatched=_fragments(folded, tokens, covered),
            heart_axis=axes[0].value if axes else None,
            language=detect_language(text, self._languages_of(tokens, matches)),
        )

    def findings(self, text: str) -> list[Finding]:
        """Every vocabulary term in the text, leftmost-longest, in order."""
        return list(self.read(text).findings)

    def heart_axis(self, text: str) -> HeartAxis | None:
        return self.read(text).heart_axis

    def _elided(self, tokens: Sequence[Token], match: Match[str], covered: set[int]) -> Match[str] | None:
        """The finding a coordinated modifier shares this one's head with: "anterior and
        inferior infarcts" also states an anterior infarct (the match is "inferior infarcts")."""
        modifier, joiner = match.first - 2, match.first - 1
        if modifier < 0 or modifier in covered or tokens[joiner].word not in COORDINATORS:
            return None
        if tokens[modifier].statement != tokens[match.first].statement:
            return None
        elided = [tokens[modifier], *tokens[match.first + 1 : match.last]]
        found = self._entities.match_at(elided, 0)
        if found is None or found.last != len(elided) or found.value == match.value:
            return None
        return Match(modifier, match.last, found.value)

    def _languages_of(self, tokens: Sequence[Token], matches: Sequence[Match[str]]) -> list[str]:
        """The language of each matched term that only one language writes that way."""
        languages = []
        for match in matches:
            written = self._term_languages.get(" ".join(t.stem for t in tokens[match.first : match.last]), ())
            if len(written) == 1:
                languages.extend(written)
        return languages

    def _finding(
        self, folded: FoldedText, tokens: Sequence[Token], match: Match[str], status: Status
    ) -> tuple[Finding, int]:
        """The finding, and how many tokens after it list its leads."""
        first, last = tokens[match.first], tokens[match.last - 1]
        statement_end = next(
            (t.start for t in tokens[match.last :] if t.statement != last.statement), len(folded.folded)
        )
        after = folded.folded[last.end : statement_end]
        leads, lead_chars = leads_after(after)
        lead_tokens = sum(
            1 for t in tokens[match.last :] if t.statement == last.statement and t.end <= last.end + lead_chars
        )
        start, end = folded.original_span(first.start, last.end)
        finding = Finding(
            entity_id=match.value,
            start=start,
            end=end,
            status=status,
            leads=leads,
            evidence=folded.original[start:end],
        )
        return finding, lead_tokens


def _fragments(folded: FoldedText, tokens: Sequence[Token], covered: set[int]) -> tuple[Fragment, ...]:
    """Runs of uncovered words within one statement that hold at least one real word."""
    fragments: list[Fragment] = []
    run: list[Token] = []
    for index, token in enumerate([*tokens, None]):
        uncovered = token is not None and index not in covered and not token.word.isdigit()
        if uncovered and run and token.statement == run[-1].statement and not token.after_gap:
            run.append(token)
            continue
        words = [t for t in run if t.word not in _FILLER and not t.word.isdigit()]
        if any(len(t.word) >= _MIN_GAP_WORD for t in words):
            while run[-1].word in _FILLER:
                run.pop()
            while run[0].word in _FILLER:
                run.pop(0)
            start, end = folded.original_span(run[0].start, run[-1].end)
            fragments.append(Fragment(start, end, folded.original[start:end]))
        run = [token] if uncovered and token is not None else []
    return tuple(fragments)


def leads_after(text: str) -> tuple[tuple[str, ...], int]:
    """Leads listed right after a finding ("in ii, iii, avf", "v4-v6", "v5,6"), and how
    many characters of ``text`` the list takes."""
    match = _LEADS_AFTER.match(text)
    if not match:
        return (), 0
    items = re.findall(_LEAD_ITEM, match.group("leads"))
    leads: list[str] = []
    for item in items:
        leads.extend(_expand(item.replace(" ", "")))
    explicit = match.group("prep") is not None or len(items) > 1 or any(lead.startswith(("v", "a")) for lead in leads)
    ordered = [_LEAD_NAMES[lead] for lead in dict.fromkeys(leads)]
    if not explicit:
        return (), 0  # a lone "i" is the Swedish "in", not lead I
    return tuple(ordered), match.end()


def _expand(item: str) -> list[str]:
    head, *more = item.split(",")
    leads = [head]
    if range_match := re.fullmatch(r"v([1-6])-v?([1-6])", head):
        low, high = sorted(map(int, range_match.groups()))
        leads = [f"v{n}" for n in range(low, high + 1)]
    leads += [f"v{digit}" for digit in more if head.startswith("v")]
    return leads


def _term_languages(vocabulary: Vocabulary) -> dict[str, frozenset[str]]:
    """Stemmed term -> the languages whose synonyms (English: names too) write it so."""
    languages: dict[str, set[str]] = {}
    for entity in vocabulary.entities:
        for language, terms in (("en", (entity.name,)), *entity.synonyms.items()):
            for term in terms:
                languages.setdefault(term_keys(term)[0], set()).add(language)
    return {key: frozenset(value) for key, value in languages.items()}


def detect_language(text: str, term_languages: Sequence[str] = ()) -> ReportLanguage:
    """From function words typical of each language and the languages of the vocabulary
    terms found (``term_languages``): "atrial fibrillation. low limb lead voltage." has
    no English function word, but its terms are English."""
    words = _WORD.findall(fold(text).folded.replace("el-axel", "el_axel"))
    hits = {
        lang: sum(w in markers for w in words) + term_languages.count(lang)
        for lang, markers in _LANGUAGE_MARKERS.items()
    }
    total = sum(hits.values())
    if total == 0:
        return "unknown"
    present = [lang for lang, count in hits.items() if count >= max(1, 0.2 * total)]
    return present[0] if len(present) == 1 else "mixed"  # type: ignore[return-value]


def knowledge_from_reading(
    reading: Reading, vocabulary: Vocabulary, max_mentions: int
) -> tuple[ReportKnowledge, tuple[str, ...]]:
    """Report knowledge: one mention per (entity, status), first occurrence first."""
    return knowledge_from_findings(reading.findings, reading, vocabulary, max_mentions)


def knowledge_from_findings(
    findings: Sequence[Finding], reading: Reading, vocabulary: Vocabulary, max_mentions: int
) -> tuple[ReportKnowledge, tuple[str, ...]]:
    """Knowledge from chosen findings and the report-level reading (language, axis)."""
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
    rhythm_ids = set(vocabulary.ids_in("rhythm"))
    rhythm = next((m.entity_id for m in mentions if m.status == "present" and m.entity_id in rhythm_ids), None)
    knowledge = ReportKnowledge(
        language=reading.language, rhythm=rhythm, heart_axis=reading.heart_axis, mentions=mentions
    )
    return knowledge, notes
