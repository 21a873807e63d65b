"""Negation and hedge cues in German, English and Swedish, and the scope each one has.

NegEx-style: a cue before a finding reaches it within the same statement when no other
finding stands between them (``no signs of infarction``, ``verdacht auf ...``); a cue
right after a finding reaches back to it (``... möglich``, ``... kan ej uteslutas``).
A finding joined to the previous one by a coordinator (``or``, ``und``, ``eller``, a
comma) shares the scope of that one's cue, in both directions: ``wahrscheinlich
anteriore ischämie oder linksbelastung``, ``ischaemia or infarction cannot be
excluded``. Hedged findings are ``uncertain``, negated ones ``absent``.

Hand-written rather than taken from a clinical NLP library: none of the well-kept ones
covers German and Swedish ECG shorthand, and the lists fit on one screen. They are
phrases matched like vocabulary terms (:mod:`kmerl.extraction.terms`), so inflected
forms (``keine``/``keinen``, ``möjlig``/``möjligt``) need no entry of their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from kmerl.extraction.schema import Status
from kmerl.extraction.terms import Match, PhraseIndex, Token


class Cue(str, Enum):
    NEGATION_BEFORE = "negation_before"
    NEGATION_AFTER = "negation_after"
    HEDGE_BEFORE = "hedge_before"
    HEDGE_AFTER = "hedge_after"
    NEUTRAL = "neutral"  # contains a cue word, negates or hedges nothing ("no change", "ålder ej bestämbar")


_CUES: dict[Cue, tuple[str, ...]] = {
    Cue.NEGATION_BEFORE: (
        # en
        "no", "not", "without", "absence of", "absent", "negative for", "no evidence of", "no signs of", "free of",
        # de
        "kein", "nicht", "ohne", "kein anhalt für", "kein hinweis auf", "keine zeichen", "ausschluss",
        # sv
        "ej", "inte", "ingen", "inga", "inget", "utan", "inga tecken på", "ej tecken på",
    ),
    Cue.NEGATION_AFTER: (
        "excluded", "ruled out", "not seen", "not present", "absent",
        "ausgeschlossen", "nicht nachweisbar", "nicht vorhanden",
        "ej påvisad", "ej påvisat", "uteslutet", "utesluten",
    ),
    Cue.HEDGE_BEFORE: (
        # en
        "possible", "possibly", "probable", "probably", "likely", "suspected", "suspect", "suspicion of",
        "suggest", "suggests", "suggesting", "suggestive of", "may", "might", "could", "consider", "questionable",
        "cannot exclude", "cannot rule out", "can not exclude",
        # de
        "möglich", "möglicherweise", "wahrscheinlich", "vermutlich", "verdacht", "verdacht auf", "v.a.",
        "fraglich", "eventuell", "evtl", "dd", "differentialdiagnostisch", "hinweis auf", "vereinbar mit",
        "spricht für", "passend zu",
        # sv
        "möjlig", "möjligen", "trolig", "troligen", "sannolik", "sannolikt", "misstänkt", "misstanke om",
        "eventuellt", "ev", "tveksam", "tala för", "talar för", "förenligt med", "kan tala för", "såsom vid",
        "möjligen orsakad av", "orsakad av",
    ),
    Cue.HEDGE_AFTER: (
        "possible", "probable", "likely", "suspected", "questionable", "cannot be excluded",
        "cannot be ruled out", "can not be excluded", "not excluded", "not to be excluded",
        "möglich", "wahrscheinlich", "fraglich", "nicht auszuschliessen", "nicht ausgeschlossen",
        "nicht sicher auszuschliessen", "nicht sicher ausgeschlossen", "vermutet",
        "möjlig", "trolig", "sannolik", "kan ej uteslutas", "kan inte uteslutas", "ej uteslutet",
        "bör övervägas", "övervägs", "misstänks", "misstänkt",
    ),
    Cue.NEUTRAL: (
        # a hedge on the age of an infarct, not on the infarct: "inferiorer infarkt wahrscheinlich alt"
        "wahrscheinlich alt", "möglicherweise alt", "wahrscheinlich frisch", "möglicherweise frisch", "vermutlich alt",
        "probably old", "possibly old", "probably recent", "possibly recent", "possibly acute", "probably acute",
        "sannolikt äldre", "sannolikt gammal", "möjligen äldre", "möjligen färsk", "sannolikt färsk",
        "no change", "no changes", "no significant change", "not significantly changed", "unchanged",
        "no longer", "not determinable", "age not determinable", "age undetermined",
        "nicht verändert", "keine änderung", "keine wesentliche änderung", "alter unbestimmt",
        "ålder ej bestämbar", "ålder ej bestämmbar", "ej bestämbar", "ej bestämmbar", "ingen förändring",
        "oförändrat", "oförändrad",
    ),
}  # fmt: skip
# Words that join findings into one list: a cue before the list reaches all of it.
COORDINATORS = frozenset(
    [
        "or",
        "and",
        "oder",
        "und",
        "bzw",
        "beziehungsweise",
        "sowie",
        "eller",
        "och",
        "samt",
        "resp",
        "respektive",
        "with",
        "mit",
        "med",
        "plus",
    ]
)
# Words between a finding and the cue that follows it ("... is possible", "... ist möglich").
_LINKING = frozenset(["is", "are", "be", "ist", "sind", "wird", "werden", "ar", "kan"])
_BEFORE_WINDOW = 6  # words: "no definite ecg evidence of" + finding
_AFTER_REACH = 3  # words between a finding and a cue after it


@dataclass(frozen=True, slots=True)
class Scope:
    """Where one finding's cues may stand: token ranges before and after it."""

    before: tuple[int, int]
    after: tuple[int, int]
    coordinated: bool  # joined to the previous finding by a coordinator or a comma


class CueMatcher:
    def __init__(self) -> None:
        self._before = _index(Cue.NEGATION_BEFORE, Cue.HEDGE_BEFORE, Cue.NEUTRAL)
        self._after = _index(Cue.NEGATION_AFTER, Cue.HEDGE_AFTER, Cue.NEUTRAL)

    def covered(self, tokens: Sequence[Token]) -> list[Match[Cue]]:
        """Every cue in the text (what a vocabulary-gap report need not show)."""
        return self._before.scan(tokens) + self._after.scan(tokens)

    def statuses(self, tokens: Sequence[Token], folded: str, findings: Sequence[tuple[int, int]]) -> list[Status]:
        """The status of each finding (token ranges, in order) from the cues around it."""
        statuses: list[Status] = []
        scopes = _scopes(tokens, folded, findings)
        claimed_until = 0  # a cue after a finding is that finding's, not the next one's
        for position, scope in enumerate(scopes):
            status: Status = "present"
            after = self._after_cue(tokens, folded, scope.after)
            if after is not None:
                status = "uncertain" if after.value is Cue.HEDGE_AFTER else "absent"
            else:
                before_start = max(scope.before[0], claimed_until)
                kinds = {m.value for m in self._before.scan(tokens, before_start, scope.before[1])}
                if Cue.NEGATION_BEFORE in kinds:
                    status = "absent"
                elif Cue.HEDGE_BEFORE in kinds:
                    status = "uncertain"
                elif scope.coordinated and statuses[-1] != "present" and not kinds - {Cue.NEUTRAL}:
                    status = statuses[-1]  # "no ischaemia or infarction"
            if after is not None:
                claimed_until = after.last
                back = position
                while back > 0 and scopes[back].coordinated and statuses[back - 1] == "present":
                    statuses[back - 1] = status  # "ischaemia or infarction cannot be excluded"
                    back -= 1
            statuses.append(status)
        return statuses

    def _after_cue(self, tokens: Sequence[Token], folded: str, window: tuple[int, int]) -> Match[Cue] | None:
        """A hedge or negation right after the finding, not behind a comma ("X, possible Y")."""
        start, stop = window
        end_of_finding = tokens[start - 1].end
        if folded[end_of_finding:].lstrip().startswith("?"):
            return Match(start, start, Cue.HEDGE_AFTER)
        while start < stop and tokens[start].word in _LINKING and start - window[0] < _AFTER_REACH:
            start += 1
        if start >= stop or "," in folded[end_of_finding : tokens[start].start]:
            return None
        match = self._after.match_at(tokens, start, stop)
        return match if match is not None and match.value is not Cue.NEUTRAL else None


def _index(*kinds: Cue) -> PhraseIndex[Cue]:
    return PhraseIndex((phrase, cue) for cue in kinds for phrase in _CUES[cue])


def _scopes(tokens: Sequence[Token], folded: str, findings: Sequence[tuple[int, int]]) -> list[Scope]:
    scopes = []
    for position, (first, last) in enumerate(findings):
        statement = tokens[first].statement
        previous = findings[position - 1] if position else None
        same_statement = previous is not None and tokens[previous[1] - 1].statement == statement
        statement_start = first
        while statement_start > 0 and tokens[statement_start - 1].statement == statement:
            statement_start -= 1
        before_start = max(statement_start, previous[1] if previous and same_statement else 0, first - _BEFORE_WINDOW)
        following = findings[position + 1] if position + 1 < len(findings) else None
        after_stop = last
        while after_stop < len(tokens) and tokens[after_stop].statement == statement:
            if following is not None and after_stop >= following[0]:
                break
            after_stop += 1
        coordinated = False
        if previous is not None and same_statement:
            between = tokens[previous[1] : first]
            gap = folded[tokens[previous[1] - 1].end : tokens[first].start]
            joined = any(t.word in COORDINATORS for t in between) or "," in gap or "/" in gap
            coordinated = joined and all(t.word in COORDINATORS for t in between)
        scopes.append(Scope((before_start, first), (last, after_stop), coordinated))
    return scopes
