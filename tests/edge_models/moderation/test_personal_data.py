"""Personal data: each French format replaced by its typed token; numbers that are not personal stay."""

from __future__ import annotations

import pytest
from stdnum.fr import nir as stdnum_nir

from edge_models.moderation import moderate
from edge_models.moderation.personal_data import first_names

# (sentence, kind, the exact stretch that must be replaced)
MUST_GO = [
    ("Rappelez-moi au 06 12 34 56 78 merci", "telephone", "06 12 34 56 78"),
    ("Rappelez-moi au 06.12.34.56.78 merci", "telephone", "06.12.34.56.78"),
    ("Rappelez-moi au 06-12-34-56-78 merci", "telephone", "06-12-34-56-78"),
    ("Rappelez-moi au 0612345678 merci", "telephone", "0612345678"),
    ("joignable au 06 12 34 56 78 8 h - 18 h", "telephone", "06 12 34 56 78"),
    ("Rappelez-moi au +33 6 12 34 56 78 merci", "telephone", "+33 6 12 34 56 78"),
    ("Rappelez-moi au +33612345678 merci", "telephone", "+33612345678"),
    ("Rappelez-moi au 0033 6 12 34 56 78 merci", "telephone", "0033 6 12 34 56 78"),
    ("Rappelez-moi au +33 (0)6 12 34 56 78 merci", "telephone", "+33 (0)6 12 34 56 78"),
    (
        "c'est le zéro six douze trente-quatre cinquante-six soixante-dix-huit merci",
        "telephone",
        "zéro six douze trente-quatre cinquante-six soixante-dix-huit",
    ),
    (
        "c'est le zéro neuf, quatre-vingt-dix-neuf, zéro zéro, onze, vingt",
        "telephone",
        "zéro neuf, quatre-vingt-dix-neuf, zéro zéro, onze, vingt",
    ),
    ("écrivez à marie.durand-2@exemple.fr demain", "email", "marie.durand-2@exemple.fr"),
    ("c'est marie point durand arobase exemple point fr voilà", "email", "marie point durand arobase exemple point fr"),
    (
        "c'est durand tiret bas marie arobase exemple point com",
        "email",
        "durand tiret bas marie arobase exemple point com",
    ),
    ("sécu 2 92 01 75 123 456 04 voilà", "nir", "2 92 01 75 123 456 04"),
    ("sécu 185052A12345633 voilà", "nir", "185052A12345633"),
    ("IBAN FR76 3000 6000 0112 3456 7890 189 voilà", "iban", "FR76 3000 6000 0112 3456 7890 189"),
    ("IBAN DE89 3704 0044 0532 0130 00 voilà", "iban", "DE89 3704 0044 0532 0130 00"),
    ("numéro fiscal 0123456789211 voilà", "numero_fiscal", "0123456789211"),
    ("la voiture AB-123-CD voilà", "plaque", "AB-123-CD"),
    ("la voiture AB 123 CD voilà", "plaque", "AB 123 CD"),
    ("ma plaque 123 ABC 75 voilà", "plaque", "123 ABC 75"),
    ("passeport 12AB34567 voilà", "passeport", "12AB34567"),
    ("mon passeport c'est 5H3K29X1L voilà", "passeport", "5H3K29X1L"),
    ("allocataire CAF 1234567 voilà", "numero_allocataire", "1234567"),
    ("mon numéro MSA 7654321 voilà", "numero_allocataire", "7654321"),
    ("j'habite au 12 bis rue de la Gare à Rennes", "adresse", "12 bis rue de la Gare"),
    ("j'habite au trois avenue Foch, depuis", "adresse", "trois avenue Foch"),
    ("j'habite impasse des Lilas depuis", "adresse", "impasse des Lilas"),
    ("je m'appelle Jeanne Martin et voilà", "nom", "Jeanne Martin"),
    ("je m'appelle jeanne et voilà", "nom", "jeanne"),
    ("Madame Leroy a été parfaite", "nom", "Leroy"),
    ("M. Blanc a été parfait", "nom", "Blanc"),
    ("Monsieur De Sousa a été parfait", "nom", "De Sousa"),
    ("ma fille Emma est venue", "nom", "Emma"),
    ("merci à Jean-Pierre pour tout", "nom", "Jean-Pierre"),
    ("la conseillère sandrine a été parfaite", "nom", "sandrine"),
    ("Bonjour, je suis Moreau, le fils de la dame", "nom", "Moreau"),
    ("la famille Traoré vous remercie", "nom", "Traoré"),
    ("moi c'est Kader, merci", "nom", "Kader"),
]

MUST_STAY = [
    "J'ai attendu 45 minutes.",
    "J'ai attendu deux heures et quart.",
    "Rendez-vous le 12/03/2024 à 14 h 30.",
    "Rendez-vous le 12.03.2024.",
    "Je suis né en 1985.",
    "On m'a versé 1 250 euros.",
    "Un rappel de 12 345 678 euros, ce serait bien.",
    "La CAF me doit 12 345 678 euros.",
    "Il y avait 12 personnes avant moi.",
    "Mon code postal est 75011.",
    "Appelez le 3939 ou le 36 46.",
    "Le 116 117 pour le médecin de garde.",
    "Le numéro vert 0 800 130 000 ne répond pas.",
    "Le cerfa 12100*02 est rempli.",
    "Le formulaire 2042 est rempli.",
    "Le guichet numéro 3 était fermé.",
    "Le bus 42 passe devant.",
    "En deux mille vingt-quatre, trois dossiers.",
    "Je suis venue pour mon passeport.",
    "Mon numéro allocataire est introuvable.",
    "La France services de la rue Jean Jaurès est bien.",
    "Je viens de Saint-Denis.",
    "Madame la conseillère était gentille.",
    "Monsieur le Maire est passé.",
    "Ma fille a 12 ans.",
    "Merci Madame.",
    "J'ai eu un problème avec Ameli et avec Doctolib.",
    "Mon prénom est compliqué à écrire.",
    "Le courrier est parti à la rue.",
    "Je suis contente, merci.",
    "Je suis venue pour ma famille.",
]


@pytest.mark.parametrize(("sentence", "kind", "data"), MUST_GO)
def test_personal_data_goes_with_its_kind_and_offsets(sentence: str, kind: str, data: str) -> None:
    result = moderate(sentence)
    assert [(r.kind, sentence[r.start : r.end]) for r in result.redactions] == [(kind, data)]
    assert result.text == sentence.replace(data, result.redactions[0].token)


@pytest.mark.parametrize("sentence", MUST_STAY)
def test_what_is_not_personal_data_stays(sentence: str) -> None:
    assert moderate(sentence).text == sentence


def test_nir_key_is_checked() -> None:
    body = "1850578006084"
    good = body + stdnum_nir.calc_check_digits(body)
    bad = body + ("00" if good[-2:] != "00" else "01")
    assert moderate(f"mon numéro {good} voilà").counts() == {"nir": 1}
    # A 15-digit number with a wrong key is still removed, but not called a NIR.
    assert moderate(f"mon numéro {bad} voilà").counts() == {"numero": 1}


def test_iban_of_another_country_needs_a_valid_checksum() -> None:
    assert moderate("code DE89 3704 0044 0532 0130 00 voilà").counts() == {"iban": 1}
    assert moderate("code DE00 3704 0044 0532 0130 00 voilà").counts() != {"iban": 1}


def test_allocataire_number_needs_a_cue() -> None:
    assert moderate("mon numéro allocataire est le 1234567").counts() == {"numero_allocataire": 1}
    assert moderate("le dossier 1234567 est parti").text == "le dossier 1234567 est parti"


def test_several_kinds_in_one_comment() -> None:
    text = "Je m'appelle Paul Girard, 06 11 22 33 44, paul.girard@exemple.fr, j'habite 5 rue Haute."
    result = moderate(text)
    assert result.text == "Je m'appelle [nom], [téléphone], [email], j'habite [adresse]."
    assert result.counts() == {"nom": 1, "telephone": 1, "email": 1, "adresse": 1}


def test_first_names_come_from_the_package_list() -> None:
    names = first_names()
    assert {"sophie", "karim", "nathalie", "mohamed", "fatima"} <= names
    assert len(names) > 5000
    assert "france" not in names and "bonjour" not in names


def test_overlapping_detections_keep_every_part_redacted() -> None:
    # The e-mail's local part swallows the second "Sophie"; the first one must still go (as a name).
    text = "bonjour Sophie Sophie bonjour arobase bonjour"
    result = moderate(text)
    assert [(r.kind, text[r.start : r.end]) for r in result.redactions] == [
        ("nom", "Sophie"),
        ("email", "Sophie bonjour arobase bonjour"),
    ]
