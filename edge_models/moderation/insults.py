"""Insults and obscenities in the visit's language: lexicon loading, inflection, context rules, matching.

The French lexicon is the LDNOOBW French lists (CC BY 4.0, see data/README.md) plus our additions
(`data/insults_fr_additions.txt`); English and Spanish have the LDNOOBW lists of their language, with
plural (and Spanish feminine) forms and no context rules. better-profanity holds the word set and matches the forms
written with wildcards ("p*tain", "c*nnard"); forms without wildcards are looked up in a dict
built from the same list, because better-profanity scans its whole list for each word (about
10 µs a lookup) and a comment needs hundreds of lookups.

Words that are ordinary French in their ordinary sense carry a context rule and are masked only
in their insulting use (see `CONTEXT_RULES`); a few list entries are never masked (`ORDINARY`).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import resources

from better_profanity import Profanity

from edge_models.moderation.normalise import Token, fold, join_spaced_letters, match_forms, squeeze

__all__ = [
    "CONTEXT_RULES",
    "LANGUAGES",
    "ORDINARY",
    "ORDINARY_BY_LANGUAGE",
    "WORD_LISTS",
    "WORD_LIST_FILES",
    "Lexicon",
    "find_insults",
    "lexicon",
    "read_word_list",
]

logger = logging.getLogger(__name__)

WORD_LISTS: dict[str, tuple[str, ...]] = {
    "fr": ("profanity_fr_ldnoobw.txt", "profanity_fr_ca_ldnoobw.txt", "insults_fr_additions.txt"),
    "en": ("profanity_en_ldnoobw.txt",),
    "es": ("profanity_es_ldnoobw.txt",),
}
"""Word lists per language, loaded from `edge_models/moderation/data/`, in this order."""
LANGUAGES = tuple(WORD_LISTS)
WORD_LIST_FILES = WORD_LISTS["fr"]

ORDINARY: frozenset[str] = frozenset(
    {
        # Entries of the LDNOOBW list that are ordinary or merely familiar French, not insults.
        "bander",  # bander une plaie, les yeux
        "caca",
        "folle",  # une attente folle (only "grande folle" is the slur)
        "gerbe",  # une gerbe de fleurs
        "gerbes",
        "jouir",  # jouir de ses droits
        "menage a trois",
        "meuf",
        "peter",  # péter un câble: familiar, not injurious
        "pipi",  # mon fils devait faire pipi
        "ramoner",  # ramoner la cheminée
        "suce",  # il suce un bonbon (the verb forms carry no insult on their own)
    }
)
"""Folded French entries never masked, even though a source list holds them."""

ORDINARY_BY_LANGUAGE: dict[str, frozenset[str]] = {
    "fr": ORDINARY,
    # Entries that are ordinary words in a comment on a public service (health, an incident, the place).
    "en": frozenset(
        {
            "big black", "cialis", "clitoris", "date rape", "domination", "ejaculation", "erotic", "erotism",
            "escort", "genitals", "girl on", "grope", "hard core", "hardcore", "how to kill", "how to murder",
            "incest", "intercourse", "nipple", "nipples", "nude", "nudity", "penis", "rape", "raping", "rapist",
            "rectum", "semen", "sex", "sexual", "sexuality", "sexually", "suck", "sucks", "taste my", "tied up",
            "tight white", "tongue in a", "undressing", "vagina", "viagra", "vulva", "xx",
        }
    ),
    "es": frozenset(
        {
            "asesinato", "asno", "concha", "drogas", "esperma", "heroina", "infierno", "maldito", "martillo",
            "nazi", "orina", "pezon", "racista", "semen", "sexo", "trio",
        }
    ),
}  # fmt: skip
"""Folded entries never masked, per language."""

# Words that are insults only after a cue ("sale ...", "espèce de ...", "quel ...").
_STRONG_CUES = frozenset(
    {
        "sale", "sales", "gros", "grosse", "grosses", "vieux", "vieille", "vieilles", "vieil",
        "pauvre", "pauvres", "triple", "quel", "quelle", "quels", "quelles", "espece", "bande",
    }
)  # fmt: skip
_DE_CUES = frozenset({"espece", "especes", "bande", "bandes", "tas", "bougre", "race"})
_COPULAS = frozenset({"est", "es", "etes", "etait", "etaient", "sont", "suis", "c", "t", "vraiment", "trop"})
_DETERMINERS = frozenset(
    {
        "un", "le", "l", "des", "les", "ce", "cet", "ces", "mon", "ton", "son", "ma", "ta", "sa", "du",
        "gros", "petit", "petits", "doux", "quel", "vrai", "tendre", "premier", "dernier", "leur",
        "nos", "vos", "notre", "votre", "beau", "grand", "joli",
    }
)  # fmt: skip
_POSSESSIVES = frozenset(
    {
        "ta", "sa", "ma", "ton", "vos", "votre", "notre", "nos", "leur", "leurs", "tes", "mes", "ses",
        "sale", "grande", "grandes", "grosse", "ferme", "fermez", "fermer", "fermes",
    }
)  # fmt: skip
_CUL_ORDINARY_NEXT: tuple[tuple[str, ...], ...] = (
    ("de", "sac"),
    ("de", "poule"),
    ("de", "jatte"),
    ("de", "lampe"),
    ("sec",),
)


def _norm(tokens: list[Token], index: int) -> str:
    return tokens[index].norm if 0 <= index < len(tokens) else ""


def _after_cue(tokens: list[Token], i: int) -> bool:
    prev, prev2 = _norm(tokens, i - 1), _norm(tokens, i - 2)
    return prev in _STRONG_CUES or (prev in {"de", "d"} and prev2 in _DE_CUES)


def _rule_cue(tokens: list[Token], i: int, j: int) -> bool:
    return _after_cue(tokens, i)


def _rule_person(tokens: list[Token], i: int, j: int) -> bool:
    prev, prev2 = _norm(tokens, i - 1), _norm(tokens, i - 2)
    return _after_cue(tokens, i) or prev == "ces" or (prev in {"un", "une", "des"} and prev2 in _COPULAS)


def _rule_cue_or_ta(tokens: list[Token], i: int, j: int) -> bool:
    return _after_cue(tokens, i) or _norm(tokens, i - 1) in {"ta", "sa"}


def _rule_determiner(tokens: list[Token], i: int, j: int) -> bool:
    return _norm(tokens, i - 1) not in _DETERMINERS


def _rule_bourre(tokens: list[Token], i: int, j: int) -> bool:
    nxt, nxt2 = _norm(tokens, j), _norm(tokens, j + 1)
    return not (nxt in {"de", "d"} or (nxt == "a" and nxt2 == "craquer"))


def _rule_cul(tokens: list[Token], i: int, j: int) -> bool:
    following = tuple(_norm(tokens, j + k) for k in range(2))
    return not any(following[: len(words)] == words for words in _CUL_ORDINARY_NEXT)


def _rule_gueule(tokens: list[Token], i: int, j: int) -> bool:
    return _norm(tokens, i - 1) in _POSSESSIVES


def _rule_en_fous(tokens: list[Token], i: int, j: int) -> bool:
    return _norm(tokens, i - 1) == "en"


Rule = Callable[[list[Token], int, int], bool]

CONTEXT_RULES: dict[str, Rule] = {
    "cue": _rule_cue,
    "person": _rule_person,
    "cue_or_ta": _rule_cue_or_ta,
    "determiner": _rule_determiner,
    "bourre": _rule_bourre,
    "cul": _rule_cul,
    "gueule": _rule_gueule,
    "en_fous": _rule_en_fous,
}
"""Context rules by name: given the tokens and the match [i, j), True when the use is insulting."""

# Rules for entries of the LDNOOBW lists (keyed by folded entry); additions carry theirs in the file.
_LIST_RULES: dict[str, str] = {
    "baiser": "determiner",  # un baiser (a kiss) stays; se faire baiser goes
    "bordel": "determiner",  # c'est le bordel (a mess) stays; bordel ! goes
    "bourre": "bourre",  # bourré de fautes stays
    "bourree": "bourre",
    "cul": "cul",  # cul-de-sac stays
    "gueule": "gueule",  # faire la gueule, gueule de bois stay; ta gueule goes
    "chatte": "cue_or_ta",  # ma chatte (my cat) stays
    "pedale": "cue",  # la pédale de frein
    "tapette": "cue",  # une tapette à mouches
    "tanche": "cue",  # the fish
    "trique": "cue",
    "calice": "cue",  # a chalice
    "turlute": "cue",
}

_ONE_LETTER_WORDS = frozenset({"a", "y", "o"})  # à, a, y, ô: words of their own in a spelled run
_VERB_ENDINGS = ("er", "e", "es", "ent", "ee", "ees", "ez", "ais", "ait", "aient", "ons")


@dataclass(frozen=True, slots=True)
class Entry:
    """A lexicon entry: the folded base form and the name of its context rule (None: always masked)."""

    lemma: str
    rule: str | None


@dataclass(frozen=True)
class Lexicon:
    """Folded forms (single words and space-joined expressions) to their entries."""

    exact: dict[str, Entry]
    squeezed: dict[str, Entry]
    max_words: int
    profanity: Profanity

    def lookup(self, forms: Iterable[str], elongated: bool) -> Entry | None:
        """Entry for the first form found, trying squeezed forms only for elongated tokens."""
        forms = list(forms)
        for form in forms:
            entry = self.exact.get(form)
            if entry is not None:
                return entry
        if elongated:
            for form in forms:
                entry = self.squeezed.get(squeeze(form))
                if entry is not None:
                    return entry
        return None

    def wildcard(self, form: str) -> Entry | None:
        """better-profanity's own matching, for forms written with '*' ("p*tain")."""
        for candidate in self.profanity.CENSOR_WORDSET:
            if candidate == form:
                return self.exact.get(str(candidate))
        return None


def read_word_list(name: str) -> list[tuple[str, str | None]]:
    """Entries of one data file as (entry, rule name or None); comments and blank lines skipped."""
    text = resources.files("edge_models.moderation").joinpath("data", name).read_text(encoding="utf-8")
    entries: list[tuple[str, str | None]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rule = line.partition("\t")
        rule_name = rule.strip() or None
        if rule_name is not None and rule_name not in CONTEXT_RULES:
            raise ValueError(f"{name}: unknown context rule {rule_name!r} for {word!r}")
        entries.append((word.strip(), rule_name))
    return entries


def inflections(word: str, language: str = "fr") -> set[str]:
    """Folded forms of one folded single word: plural, feminine, and (French) -er verb forms."""
    forms = {word}
    if language == "en":
        return forms | ({word + "s", word + "es"} if not word.endswith("s") else set())
    if language == "es":
        if word.endswith("o"):
            forms.update({word[:-1] + "a", word[:-1] + "as", word + "s"})
        elif not word.endswith("s"):
            forms.update({word + "s", word + "es"})
        return forms
    if word.endswith("er") and len(word) > 4:
        stem = word[:-2]
        forms.update(stem + ending for ending in _VERB_ENDINGS)
    elif word.endswith("eur"):
        forms.update({word + "s", word[:-3] + "euse", word[:-3] + "euses"})
    elif word.endswith("e"):
        forms.update({word + "s", word + "e", word + "es"})
    elif word.endswith(("s", "x", "z")):
        pass
    elif word.endswith("al"):
        forms.update({word + "s", word[:-2] + "aux"})
    elif word.endswith("eau"):
        forms.add(word + "x")
    else:
        forms.add(word + "s")
        if word.endswith(("d", "t", "i", "u")):
            forms.update({word + "e", word + "es"})
    return forms


def check_language(language: str) -> str:
    """`language` if moderation has word lists for it, else a ValueError naming those it has."""
    if language not in WORD_LISTS:
        raise ValueError(f"no moderation word lists for language {language!r}; languages: {', '.join(LANGUAGES)}")
    return language


@functools.lru_cache(maxsize=len(WORD_LISTS))
def lexicon(language: str = "fr") -> Lexicon:
    """The lexicon of one language, loaded once per process from the data files."""
    ordinary = ORDINARY_BY_LANGUAGE[check_language(language)]
    rules = _LIST_RULES if language == "fr" else {}
    exact: dict[str, Entry] = {}
    for name in WORD_LISTS[language]:
        for raw, rule in read_word_list(name):
            folded = " ".join(fold(raw).replace("-", " ").split())
            if folded in ordinary:
                continue
            entry = Entry(folded, rule or rules.get(folded))
            words = folded.split(" ")
            forms = inflections(folded, language) if len(words) == 1 else {folded}
            for form in forms:
                if form in ordinary:
                    continue
                # An always-masked entry wins over a context rule for the same form.
                if form not in exact or (exact[form].rule is not None and entry.rule is None):
                    exact[form] = entry
    squeezed: dict[str, Entry] = {}
    for form, entry in exact.items():
        squeezed.setdefault(squeeze(form), entry)
    if not exact:
        raise RuntimeError("the moderation word lists are empty")
    # Only our forms: an empty list would make better-profanity load its English default list.
    profanity = Profanity(sorted(exact))
    max_words = max(form.count(" ") + 1 for form in exact)
    logger.debug("moderation lexicon: %d forms, %d entries", len(exact), len(set(exact.values())))
    return Lexicon(exact=exact, squeezed=squeezed, max_words=max_words, profanity=profanity)


def _masked(lex: Lexicon, entry: Entry, tokens: list[Token], i: int, j: int) -> bool:
    if entry.rule is None:
        return True
    return CONTEXT_RULES[entry.rule](tokens, i, j)


def _one_letter_word(text: str, token: Token) -> bool:
    """True for "à", "a", "y" and elided clitics ("l'", "d'"), which may precede a spelled-out word."""
    return token.norm in _ONE_LETTER_WORDS or text[token.end : token.end + 1] in {"'", "’"}


def find_insults(text: str, tokens: list[Token], language: str = "fr") -> list[tuple[int, int]]:
    """Spans (start, end) of insults in `text`, in `language`; multi-word expressions give one span."""
    lex = lexicon(language)
    spans: list[tuple[int, int]] = []
    covered = [False] * len(tokens)
    i = 0
    while i < len(tokens):
        matched = 0
        for n in range(min(lex.max_words, len(tokens) - i), 1, -1):
            entry = lex.exact.get(" ".join(t.norm for t in tokens[i : i + n]))
            if entry is not None and _masked(lex, entry, tokens, i, i + n):
                matched = n
                break
        if not matched:
            forms, elongated = match_forms(tokens[i].norm)
            found = lex.lookup(forms, elongated)
            if found is None and "*" in tokens[i].norm:
                found = lex.wildcard(tokens[i].norm)
            if found is not None and _masked(lex, found, tokens, i, i + 1):
                matched = 1
        if matched:
            spans.append((tokens[i].start, tokens[i + matched - 1].end))
            for k in range(i, i + matched):
                covered[k] = True
            i += matched
        else:
            i += 1
    for first, last, joined in join_spaced_letters(text, tokens):
        if any(covered[first:last]):
            continue

        # The whole run, or the run without one-letter words at either end ("à p u t e", "l'e n c u l é").
        lefts = [a for a in range(3) if all(_one_letter_word(text, tokens[first + x]) for x in range(a))]
        rights = [b for b in range(3) if all(_one_letter_word(text, tokens[last - 1 - x]) for x in range(b))]
        for trim_left, trim_right in sorted(
            ((a, b) for a in lefts for b in rights if last - first - a - b >= 3), key=sum
        ):
            sub = joined[trim_left : len(joined) - trim_right]
            forms, elongated = match_forms(sub)
            if lex.lookup(forms, elongated or squeeze(sub) != sub) is not None:
                spans.append((tokens[first + trim_left].start, tokens[last - 1 - trim_right].end))
                break
    return sorted(spans)
