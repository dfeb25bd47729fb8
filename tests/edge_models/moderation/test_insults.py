"""Insults: the French normaliser, the lexicon, and the ambiguous-word policy."""

from __future__ import annotations

from importlib import resources

import pytest

from edge_models.moderation import moderate
from edge_models.moderation.insults import (
    ORDINARY,
    ORDINARY_BY_LANGUAGE,
    WORD_LIST_FILES,
    WORD_LISTS,
    inflections,
    lexicon,
    read_word_list,
)
from edge_models.moderation.normalise import fold, join_spaced_letters, match_forms, squeeze, tokenize

# Each must lose exactly the quoted part: (sentence, what goes).
MUST_GO = [
    ("Ces enculés ne répondent pas.", "enculés"),
    ("Espèce d'enculé.", "enculé"),
    ("Bande de connards.", "connards"),
    ("Quelle connasse.", "connasse"),
    ("Putainnn c'est long.", "Putainnn"),
    ("Connnnnard !", "Connnnnard"),
    ("P U T A I N de panne.", "P U T A I N"),
    ("c.o.n.n.a.r.d va", "c.o.n.n.a.r.d"),
    ("p-u-t-a-i-n de panne", "p-u-t-a-i-n"),
    ("Bande d'e n c u l é s.", "e n c u l é s"),
    ("y a p u t a i n de panne", "p u t a i n"),
    ("Sale c0nnard.", "c0nnard"),
    ("Quelle s@lope.", "s@lope"),
    ("Quel p*tain de service.", "p*tain"),
    ("C'est de la m3rde.", "m3rde"),
    ("Fils de pute.", "Fils de pute"),
    ("Fils-de-pute.", "Fils-de-pute"),
    ("Ta gueule.", "Ta gueule"),
    ("Ferme ta gueule.", "ta gueule"),
    ("On s'est fait baiser.", "baiser"),
    ("Il était bourré.", "bourré"),
    ("Bordel, encore en panne.", "Bordel"),
    ("Mon cul !", "cul"),
    ("Quel trou du cul.", "trou du cul"),
    ("Espèce de tapette.", "tapette"),
    ("Sale chienne.", "chienne"),
    ("C'est un idiot.", "idiot"),
    ("Je m'en fous.", "fous"),
    ("Ils se foutent de nous.", "foutent"),
    ("Ça me fait chier.", "chier"),
    ("Vous êtes des cons.", "cons"),
    ("ENFOIRÉS !", "ENFOIRÉS"),
    ("Enculée.", "Enculée"),
    ("Quelle bande de crétines.", "crétines"),
]

# Ordinary French that must stay untouched (the ambiguous-word policy, see docs/moderation.md).
MUST_STAY = [
    "Le calcul de mes droits était faux.",
    "Il a fallu reculer le rendez-vous.",
    "Le fichier PDF ne s'ouvrait pas.",
    "Le conseil départemental finance le lieu.",
    "Ma situation est particulière.",
    "Le véhicule est mal garé.",
    "C'est ridicule d'attendre.",
    "Un cul-de-sac au fond de la rue.",
    "Un baiser sur la joue.",
    "Le baiser de la fin.",
    "C'est le bordel pour avoir un rendez-vous.",
    "Quel bordel ces démarches.",
    "Un dossier bourré de fautes.",
    "Un formulaire bourré d'erreurs.",
    "La salle était bourrée à craquer.",
    "J'ai fait la gueule en arrivant.",
    "Il avait la gueule de bois.",
    "Ma chatte est malade.",
    "La pédale de frein est cassée.",
    "Une tapette à mouches.",
    "Une gerbe de fleurs.",
    "Jouir de ses droits.",
    "Mon fils devait faire pipi.",
    "Une attente folle.",
    "Des délais fous.",
    "C'est idiot de devoir imprimer.",
    "Ce système est débile.",
    "Les ordures ne sont pas ramassées.",
    "La vache, que c'était long !",
    "Ma chienne m'attendait dehors.",
    "Il faut baisser le son.",
    "Les prix ont baissé.",
    "C'était culotté.",
    "Je conseille ce lieu.",
    "Le contrat était mal rempli.",
    "Une consultation rapide.",
    "Service nul, accueil lamentable.",
    "Les agents sont incompétents.",
    "Bande de jeunes dans la salle.",
    "Il y a des cônes de chantier devant l'entrée.",
    "Le cahier de liaison.",
    "Il a pété un câble, mais c'était pas contre vous.",
    "On a pu ramoner la cheminée grâce à l'aide.",
    "Bander la plaie.",
    "Il a épelé r e c u l pour moi.",
    "Le sigle c'est C A F.",
]


@pytest.mark.parametrize(("sentence", "insult"), MUST_GO)
def test_insult_goes(sentence: str, insult: str) -> None:
    result = moderate(sentence)
    assert [sentence[r.start : r.end] for r in result.redactions] == [insult]
    assert result.insults == 1
    assert result.text == sentence.replace(insult, "[…]")


@pytest.mark.parametrize("sentence", MUST_STAY)
def test_ordinary_french_stays(sentence: str) -> None:
    result = moderate(sentence)
    assert result.text == sentence
    assert result.insults == 0


def test_several_insults_are_counted_apart() -> None:
    result = moderate("Putain de merde, bande de connards.")
    assert result.insults == 3
    assert result.text == "[…] de […], bande de […]."
    assert result.counts() == {"insult": 3}


def test_fold_and_squeeze() -> None:
    assert fold("ENCULÉE Œuvre") == "enculee oeuvre"
    assert squeeze("connnnard") == "conard"


def test_match_forms_undo_digits_only_in_words() -> None:
    forms, elongated = match_forms("c0nn4rd")
    assert "connard" in forms
    assert not elongated
    assert match_forms("0612")[0] == ["0612"]
    forms, elongated = match_forms("putainnnn")
    assert elongated and "putainn" in forms


def test_elisions_split_into_tokens() -> None:
    assert [t.norm for t in tokenize("d'enculé qu’il l'a")] == ["d", "encule", "qu", "il", "l", "a"]
    tokens = tokenize("x d'enculé")
    assert "x d'enculé"[tokens[2].start : tokens[2].end] == "enculé"


def test_spaced_letters_join_only_short_separators() -> None:
    text = "p u t a i n et c . o . n"
    runs = join_spaced_letters(text, tokenize(text))
    assert [joined for _, _, joined in runs] == ["putain", "con"]
    assert join_spaced_letters("a, b, c", tokenize("a, b, c")) == []


def test_inflections() -> None:
    assert {"connards", "connarde", "connardes"} <= inflections("connard")
    assert {"encule", "enculent", "enculez", "enculees"} <= inflections("enculer")
    assert {"emmerdeuse", "emmerdeurs"} <= inflections("emmerdeur")
    assert "cone" not in inflections("con")


def test_lexicon_holds_only_our_lists_and_no_default_english_words() -> None:
    lex = lexicon()
    for english in ("fuck", "shit", "bitch", "asshole"):
        assert english not in lex.exact
        assert not moderate(f"what the {english}").changed
    # better-profanity holds exactly our forms: its default list (thousands of words) did not leak in.
    assert sorted(str(w) for w in lex.profanity.CENSOR_WORDSET) == sorted(lex.exact)
    assert not (ORDINARY & set(lex.exact))


def test_word_lists_keep_their_attribution() -> None:
    for name in WORD_LIST_FILES:
        assert read_word_list(name), name
    data = resources.files("edge_models.moderation").joinpath("data")
    for name in ("profanity_fr_ldnoobw.txt", "profanity_fr_ca_ldnoobw.txt", *WORD_LISTS["en"], *WORD_LISTS["es"]):
        header = data.joinpath(name).read_text(encoding="utf-8").splitlines()[:3]
        assert any("CC BY 4.0" in line for line in header), name
        assert any("LDNOOBW" in line for line in header), name
    readme = data.joinpath("README.md").read_text(encoding="utf-8")
    assert "CC BY 4.0" in readme and "List-of-Dirty-Naughty-Obscene-and-Otherwise-Bad-Words" in readme


def test_unknown_context_rule_in_a_list_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import edge_models.moderation.insults as insults

    class FakeFile:
        def joinpath(self, *parts: str) -> FakeFile:
            return self

        def read_text(self, encoding: str) -> str:
            return "abruti\tnowhere\n"

    monkeypatch.setattr(insults.resources, "files", lambda package: FakeFile())
    with pytest.raises(ValueError, match="unknown context rule 'nowhere'"):
        insults.read_word_list("x.txt")


@pytest.mark.parametrize(
    ("language", "text", "masked", "kept"),
    [
        (
            "en",
            "The staff were great, but the queue was bullshit and that bastard at the desk was a fucking asshole. "
            "Bastards!",
            ["bullshit", "bastard", "fucking", "asshole", "Bastards"],
            ["staff", "queue", "desk"],
        ),
        ("en", "The nurse at the health desk explained the sexual health leaflet.", [], ["sexual"]),
        (
            "es",
            "El funcionario era un gilipollas y un cabrón, la otra una puta; unos pendejos.",
            ["gilipollas", "cabrón", "puta", "pendejos"],
            ["funcionario"],
        ),
        ("es", "Esperé un infierno de tiempo y el martillo de la puerta no funcionaba.", [], ["infierno", "martillo"]),
    ],
)
def test_insults_in_english_and_spanish(language: str, text: str, masked: list[str], kept: list[str]) -> None:
    moderated = moderate(text, language).text
    for word in masked:
        assert word not in moderated, (word, moderated)
    for word in kept:
        assert word in moderated, (word, moderated)
    assert moderated.count("[…]") == len(masked)


def test_each_language_masks_its_own_words_and_french_personal_data_stay_on() -> None:
    assert moderate("putain de file d'attente", "en").text == "putain de file d'attente"
    assert moderate("what the fuck", "fr").text == "what the fuck"
    assert moderate("Call me on 06 12 34 56 78, damn bitch", "en").text == "Call me on [téléphone], damn […]"
    for language, ordinary in ORDINARY_BY_LANGUAGE.items():
        assert not (ordinary & set(lexicon(language).exact)), language
    with pytest.raises(ValueError, match=r"no moderation word lists for language 'de'; languages: fr, en, es"):
        moderate("Scheiße", "de")


def test_inflections_in_english_and_spanish() -> None:
    assert {"bitch", "bitches"} <= inflections("bitch", "en")
    assert {"pendejo", "pendeja", "pendejas", "pendejos"} <= inflections("pendejo", "es")
    assert {"cabron", "cabrones"} <= inflections("cabron", "es")
