"""English -> German parallel data: a seeded grammar generator and a loader for local corpora.

The embedded corpus comes from a small English/German grammar (a few hundred words, tables below).
Both sides are natural text in ``text.detokenize`` style with the first word capitalised, e.g.
``Today the small dog that the women see sleeps in the garden, but the cat plays.`` ->
``Heute schläft der kleine Hund, den die Frauen sehen, im Garten, aber die Katze spielt.``

The German is grammatical: articles (``der``, ``ein``, ``dieser``, ``mein``, ``kein``) and
adjective endings (weak, mixed, strong) inflected by gender, number and case; accusative, dative
and prepositional objects (``hilft dem Mann``, ``wartet auf den Hund``); the case each preposition
governs and its contractions (``im``, ``zum``, ``ins``); weak masculine nouns (``den Jungen``);
dative plural ``-n``; verb-second main clauses (also after a fronted adverb or subordinate clause);
verb-final subordinate, ``dass``/``ob`` and relative clauses (relative pronoun by the head's gender
and number and its own case, pied-piped prepositions: ``auf den der Mann wartet``); commas before
subordinate clauses, around relative clauses and before ``aber``. English stays in the present
simple with restrictive ``that`` relative clauses. Sentence length (in ``tokenize`` tokens,
punctuation included) grows through adjectives, adverbs, prepositional phrases, relative clauses,
complement clauses, coordination and subordination; the generator grows a sentence to an exact
requested length. English whose words could attach to a relative clause where the German would
differ (``the dog that sleeps often sees``) is rejected, so every English sentence has one German
translation; an English sentence occurs at most once in a corpus.

``load_parallel_corpus`` reads Multi30k-style plain-text files instead (one sentence per line).
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from components.data.schema import PARALLEL, SPLITS, DatasetMeta, write_meta, write_split
from components.data.text import detokenize
from components.errors import UserError
from components.io import atomic_directory

# --------------------------------------------------------------------------------------- lexicon


class Noun(NamedTuple):
    en: str
    en_pl: str
    de: str
    de_pl: str
    gender: str  # "m", "f" or "n"
    animate: bool  # only animate nouns are subjects
    de_weak: str = ""  # weak masculines: accusative/dative singular (den Jungen)


class Adjective(NamedTuple):
    en: str
    de: str  # attributive stem the ending is added to (dunkl-, teur-, hoh-)
    order: int  # English/German order before the noun: 0 opinion, 1 size, 2 age, 3 colour


class Verb(NamedTuple):
    en: str  # 3rd person singular, e.g. "sees", "waits for"
    en_pl: str  # 3rd person plural, e.g. "see", "wait for"
    de: str  # 3rd person singular, e.g. "sieht"
    de_pl: str  # 3rd person plural, e.g. "sehen"
    kind: str  # "intr", "acc", "dat", "prep" (German prepositional object) or "clause" (that/whether)
    obj: str = "*"  # object: "*" any noun, "a" animate, "t" thing
    de_prep: str = ""  # "prep": the German preposition (wartet auf); "clause": complementizer (dass, ob)
    de_case: str = ""  # "prep": the case it governs


class Preposition(NamedTuple):
    en: str
    de: str
    case: str  # "acc" or "dat"
    attributive: bool  # may modify a noun (the dog with the ball), not only a clause (runs into the house)


class Adverb(NamedTuple):
    en: str
    de: str
    kind: str  # "freq": English before the verb; "end": English at the end of the clause
    frontable: bool  # may open a main clause (German then inverts: Heute sieht der Hund ...)


class Conjunction(NamedTuple):
    en: str
    de: str
    preposable: bool = False  # a subordinate clause with it may open the sentence


A, T = True, False  # animate / thing, in the noun table
NOUNS = tuple(
    Noun(*row)
    for row in (
        ("man", "men", "Mann", "Männer", "m", A),
        ("dog", "dogs", "Hund", "Hunde", "m", A),
        ("boy", "boys", "Junge", "Jungen", "m", A, "Jungen"),
        ("teacher", "teachers", "Lehrer", "Lehrer", "m", A),
        ("bird", "birds", "Vogel", "Vögel", "m", A),
        ("bear", "bears", "Bär", "Bären", "m", A, "Bären"),
        ("lion", "lions", "Löwe", "Löwen", "m", A, "Löwen"),
        ("student", "students", "Student", "Studenten", "m", A, "Studenten"),
        ("doctor", "doctors", "Arzt", "Ärzte", "m", A),
        ("cook", "cooks", "Koch", "Köche", "m", A),
        ("neighbor", "neighbors", "Nachbar", "Nachbarn", "m", A, "Nachbarn"),
        ("friend", "friends", "Freund", "Freunde", "m", A),
        ("king", "kings", "König", "Könige", "m", A),
        ("frog", "frogs", "Frosch", "Frösche", "m", A),
        ("monkey", "monkeys", "Affe", "Affen", "m", A, "Affen"),
        ("elephant", "elephants", "Elefant", "Elefanten", "m", A, "Elefanten"),
        ("fox", "foxes", "Fuchs", "Füchse", "m", A),
        ("wolf", "wolves", "Wolf", "Wölfe", "m", A),
        ("farmer", "farmers", "Bauer", "Bauern", "m", A, "Bauern"),
        ("brother", "brothers", "Bruder", "Brüder", "m", A),
        ("father", "fathers", "Vater", "Väter", "m", A),
        ("painter", "painters", "Maler", "Maler", "m", A),
        ("soldier", "soldiers", "Soldat", "Soldaten", "m", A, "Soldaten"),
        ("woman", "women", "Frau", "Frauen", "f", A),
        ("cat", "cats", "Katze", "Katzen", "f", A),
        ("mother", "mothers", "Mutter", "Mütter", "f", A),
        ("sister", "sisters", "Schwester", "Schwestern", "f", A),
        ("daughter", "daughters", "Tochter", "Töchter", "f", A),
        ("mouse", "mice", "Maus", "Mäuse", "f", A),
        ("cow", "cows", "Kuh", "Kühe", "f", A),
        ("duck", "ducks", "Ente", "Enten", "f", A),
        ("queen", "queens", "Königin", "Königinnen", "f", A),
        ("aunt", "aunts", "Tante", "Tanten", "f", A),
        ("snake", "snakes", "Schlange", "Schlangen", "f", A),
        ("grandmother", "grandmothers", "Großmutter", "Großmütter", "f", A),
        ("bee", "bees", "Biene", "Bienen", "f", A),
        ("owl", "owls", "Eule", "Eulen", "f", A),
        ("goat", "goats", "Ziege", "Ziegen", "f", A),
        ("child", "children", "Kind", "Kinder", "n", A),
        ("girl", "girls", "Mädchen", "Mädchen", "n", A),
        ("horse", "horses", "Pferd", "Pferde", "n", A),
        ("goose", "geese", "Gans", "Gänse", "f", A),
        ("baby", "babies", "Baby", "Babys", "n", A),
        ("pig", "pigs", "Schwein", "Schweine", "n", A),
        ("rabbit", "rabbits", "Kaninchen", "Kaninchen", "n", A),
        ("chicken", "chickens", "Huhn", "Hühner", "n", A),
        ("lamb", "lambs", "Lamm", "Lämmer", "n", A),
        ("calf", "calves", "Kalb", "Kälber", "n", A),
        ("table", "tables", "Tisch", "Tische", "m", T),
        ("chair", "chairs", "Stuhl", "Stühle", "m", T),
        ("ball", "balls", "Ball", "Bälle", "m", T),
        ("tree", "trees", "Baum", "Bäume", "m", T),
        ("garden", "gardens", "Garten", "Gärten", "m", T),
        ("park", "parks", "Park", "Parks", "m", T),
        ("apple", "apples", "Apfel", "Äpfel", "m", T),
        ("letter", "letters", "Brief", "Briefe", "m", T),
        ("key", "keys", "Schlüssel", "Schlüssel", "m", T),
        ("hat", "hats", "Hut", "Hüte", "m", T),
        ("train", "trains", "Zug", "Züge", "m", T),
        ("mountain", "mountains", "Berg", "Berge", "m", T),
        ("river", "rivers", "Fluss", "Flüsse", "m", T),
        ("cake", "cakes", "Kuchen", "Kuchen", "m", T),
        ("stone", "stones", "Stein", "Steine", "m", T),
        ("basket", "baskets", "Korb", "Körbe", "m", T),
        ("forest", "forests", "Wald", "Wälder", "m", T),
        ("shoe", "shoes", "Schuh", "Schuhe", "m", T),
        ("pencil", "pencils", "Stift", "Stifte", "m", T),
        ("plate", "plates", "Teller", "Teller", "m", T),
        ("door", "doors", "Tür", "Türen", "f", T),
        ("lamp", "lamps", "Lampe", "Lampen", "f", T),
        ("bag", "bags", "Tasche", "Taschen", "f", T),
        ("flower", "flowers", "Blume", "Blumen", "f", T),
        ("street", "streets", "Straße", "Straßen", "f", T),
        ("city", "cities", "Stadt", "Städte", "f", T),
        ("box", "boxes", "Kiste", "Kisten", "f", T),
        ("bridge", "bridges", "Brücke", "Brücken", "f", T),
        ("school", "schools", "Schule", "Schulen", "f", T),
        ("kitchen", "kitchens", "Küche", "Küchen", "f", T),
        ("bottle", "bottles", "Flasche", "Flaschen", "f", T),
        ("clock", "clocks", "Uhr", "Uhren", "f", T),
        ("newspaper", "newspapers", "Zeitung", "Zeitungen", "f", T),
        ("cup", "cups", "Tasse", "Tassen", "f", T),
        ("jacket", "jackets", "Jacke", "Jacken", "f", T),
        ("church", "churches", "Kirche", "Kirchen", "f", T),
        ("meadow", "meadows", "Wiese", "Wiesen", "f", T),
        ("wall", "walls", "Wand", "Wände", "f", T),
        ("banana", "bananas", "Banane", "Bananen", "f", T),
        ("house", "houses", "Haus", "Häuser", "n", T),
        ("car", "cars", "Auto", "Autos", "n", T),
        ("book", "books", "Buch", "Bücher", "n", T),
        ("window", "windows", "Fenster", "Fenster", "n", T),
        ("picture", "pictures", "Bild", "Bilder", "n", T),
        ("boat", "boats", "Boot", "Boote", "n", T),
        ("bed", "beds", "Bett", "Betten", "n", T),
        ("bicycle", "bicycles", "Fahrrad", "Fahrräder", "n", T),
        ("gift", "gifts", "Geschenk", "Geschenke", "n", T),
        ("toy", "toys", "Spielzeug", "Spielzeuge", "n", T),
        ("glass", "glasses", "Glas", "Gläser", "n", T),
        ("room", "rooms", "Zimmer", "Zimmer", "n", T),
        ("egg", "eggs", "Ei", "Eier", "n", T),
        ("village", "villages", "Dorf", "Dörfer", "n", T),
        ("ship", "ships", "Schiff", "Schiffe", "n", T),
        ("shirt", "shirts", "Hemd", "Hemden", "n", T),
        ("field", "fields", "Feld", "Felder", "n", T),
        ("nest", "nests", "Nest", "Nester", "n", T),
        ("song", "songs", "Lied", "Lieder", "n", T),
        ("castle", "castles", "Schloss", "Schlösser", "n", T),
    )
)

ADJECTIVES = tuple(
    Adjective(*row)
    for row in (
        ("beautiful", "schön", 0),
        ("ugly", "hässlich", 0),
        ("good", "gut", 0),
        ("bad", "schlecht", 0),
        ("funny", "lustig", 0),
        ("tired", "müd", 0),
        ("happy", "glücklich", 0),
        ("sad", "traurig", 0),
        ("clever", "klug", 0),
        ("friendly", "freundlich", 0),
        ("angry", "wütend", 0),
        ("quiet", "ruhig", 0),
        ("loud", "laut", 0),
        ("fast", "schnell", 0),
        ("slow", "langsam", 0),
        ("strong", "stark", 0),
        ("weak", "schwach", 0),
        ("hungry", "hungrig", 0),
        ("rich", "reich", 0),
        ("poor", "arm", 0),
        ("famous", "berühmt", 0),
        ("strange", "seltsam", 0),
        ("nice", "nett", 0),
        ("pretty", "hübsch", 0),
        ("dirty", "schmutzig", 0),
        ("clean", "sauber", 0),
        ("expensive", "teur", 0),
        ("cheap", "billig", 0),
        ("wild", "wild", 0),
        ("brave", "mutig", 0),
        ("lazy", "faul", 0),
        ("heavy", "schwer", 0),
        ("empty", "leer", 0),
        ("warm", "warm", 0),
        ("cold", "kalt", 0),
        ("dark", "dunkl", 0),
        ("small", "klein", 1),
        ("big", "groß", 1),
        ("high", "hoh", 1),
        ("long", "lang", 1),
        ("short", "kurz", 1),
        ("round", "rund", 1),
        ("old", "alt", 2),
        ("young", "jung", 2),
        ("new", "neu", 2),
        ("red", "rot", 3),
        ("blue", "blau", 3),
        ("green", "grün", 3),
        ("yellow", "gelb", 3),
        ("black", "schwarz", 3),
        ("white", "weiß", 3),
        ("brown", "braun", 3),
        ("grey", "grau", 3),
    )
)

VERBS = tuple(
    Verb(*row)
    for row in (
        ("sleeps", "sleep", "schläft", "schlafen", "intr"),
        ("laughs", "laugh", "lacht", "lachen", "intr"),
        ("cries", "cry", "weint", "weinen", "intr"),
        ("waits", "wait", "wartet", "warten", "intr"),
        ("runs", "run", "läuft", "laufen", "intr"),
        ("swims", "swim", "schwimmt", "schwimmen", "intr"),
        ("sings", "sing", "singt", "singen", "intr"),
        ("dances", "dance", "tanzt", "tanzen", "intr"),
        ("plays", "play", "spielt", "spielen", "intr"),
        ("works", "work", "arbeitet", "arbeiten", "intr"),
        ("sits", "sit", "sitzt", "sitzen", "intr"),
        ("stands", "stand", "steht", "stehen", "intr"),
        ("smiles", "smile", "lächelt", "lächeln", "intr"),
        ("jumps", "jump", "springt", "springen", "intr"),
        ("dreams", "dream", "träumt", "träumen", "intr"),
        ("comes", "come", "kommt", "kommen", "intr"),
        ("falls", "fall", "fällt", "fallen", "intr"),
        ("travels", "travel", "reist", "reisen", "intr"),
        ("screams", "scream", "schreit", "schreien", "intr"),
        ("whistles", "whistle", "pfeift", "pfeifen", "intr"),
        ("climbs", "climb", "klettert", "klettern", "intr"),
        ("wins", "win", "gewinnt", "gewinnen", "intr"),
        ("sees", "see", "sieht", "sehen", "acc"),
        ("likes", "like", "mag", "mögen", "acc"),
        ("has", "have", "hat", "haben", "acc"),
        ("finds", "find", "findet", "finden", "acc"),
        ("looks for", "look for", "sucht", "suchen", "acc"),
        ("knows", "know", "kennt", "kennen", "acc"),
        ("hears", "hear", "hört", "hören", "acc"),
        ("calls", "call", "ruft", "rufen", "acc", "a"),
        ("paints", "paint", "malt", "malen", "acc"),
        ("reads", "read", "liest", "lesen", "acc", "t"),
        ("buys", "buy", "kauft", "kaufen", "acc", "t"),
        ("sells", "sell", "verkauft", "verkaufen", "acc", "t"),
        ("carries", "carry", "trägt", "tragen", "acc"),
        ("catches", "catch", "fängt", "fangen", "acc"),
        ("pulls", "pull", "zieht", "ziehen", "acc"),
        ("pushes", "push", "schiebt", "schieben", "acc"),
        ("washes", "wash", "wäscht", "waschen", "acc"),
        ("feeds", "feed", "füttert", "füttern", "acc", "a"),
        ("watches", "watch", "beobachtet", "beobachten", "acc"),
        ("visits", "visit", "besucht", "besuchen", "acc"),
        ("misses", "miss", "vermisst", "vermissen", "acc"),
        ("loves", "love", "liebt", "lieben", "acc"),
        ("hates", "hate", "hasst", "hassen", "acc"),
        ("needs", "need", "braucht", "brauchen", "acc"),
        ("builds", "build", "baut", "bauen", "acc", "t"),
        ("opens", "open", "öffnet", "öffnen", "acc", "t"),
        ("closes", "close", "schließt", "schließen", "acc", "t"),
        ("cleans", "clean", "putzt", "putzen", "acc", "t"),
        ("brings", "bring", "bringt", "bringen", "acc"),
        ("takes", "take", "nimmt", "nehmen", "acc"),
        ("draws", "draw", "zeichnet", "zeichnen", "acc"),
        ("hides", "hide", "versteckt", "verstecken", "acc"),
        ("throws", "throw", "wirft", "werfen", "acc", "t"),
        ("forgets", "forget", "vergisst", "vergessen", "acc"),
        ("wakes", "wake", "weckt", "wecken", "acc", "a"),
        ("greets", "greet", "begrüßt", "begrüßen", "acc", "a"),
        ("kisses", "kiss", "küsst", "küssen", "acc", "a"),
        ("bites", "bite", "beißt", "beißen", "acc"),
        ("chases", "chase", "jagt", "jagen", "acc", "a"),
        ("photographs", "photograph", "fotografiert", "fotografieren", "acc"),
        ("helps", "help", "hilft", "helfen", "dat", "a"),
        ("follows", "follow", "folgt", "folgen", "dat", "a"),
        ("thanks", "thank", "dankt", "danken", "dat", "a"),
        ("answers", "answer", "antwortet", "antworten", "dat", "a"),
        ("trusts", "trust", "vertraut", "vertrauen", "dat", "a"),
        ("waits for", "wait for", "wartet", "warten", "prep", "*", "auf", "acc"),
        ("thinks of", "think of", "denkt", "denken", "prep", "*", "an", "acc"),
        ("laughs at", "laugh at", "lacht", "lachen", "prep", "*", "über", "acc"),
        ("asks for", "ask for", "bittet", "bitten", "prep", "*", "um", "acc"),
        ("talks to", "talk to", "spricht", "sprechen", "prep", "a", "mit", "dat"),
        ("plays with", "play with", "spielt", "spielen", "prep", "*", "mit", "dat"),
        ("dreams of", "dream of", "träumt", "träumen", "prep", "*", "von", "dat"),
        ("says that", "say that", "sagt", "sagen", "clause", "", "dass"),
        ("thinks that", "think that", "denkt", "denken", "clause", "", "dass"),
        ("knows that", "know that", "weiß", "wissen", "clause", "", "dass"),
        ("believes that", "believe that", "glaubt", "glauben", "clause", "", "dass"),
        ("hopes that", "hope that", "hofft", "hoffen", "clause", "", "dass"),
        ("hears that", "hear that", "hört", "hören", "clause", "", "dass"),
        ("explains that", "explain that", "erklärt", "erklären", "clause", "", "dass"),
        ("forgets that", "forget that", "vergisst", "vergessen", "clause", "", "dass"),
        ("asks whether", "ask whether", "fragt", "fragen", "clause", "", "ob"),
    )
)

PREPOSITIONS = tuple(
    Preposition(*row)
    for row in (
        ("with", "mit", "dat", True),
        ("from", "von", "dat", True),
        ("near", "bei", "dat", True),
        ("after", "nach", "dat", False),
        ("out of", "aus", "dat", False),
        ("to", "zu", "dat", False),
        ("in", "in", "dat", True),
        ("on", "auf", "dat", True),
        ("at", "an", "dat", True),
        ("under", "unter", "dat", True),
        ("behind", "hinter", "dat", True),
        ("above", "über", "dat", True),
        ("next to", "neben", "dat", True),
        ("in front of", "vor", "dat", True),
        ("into", "in", "acc", False),
        ("onto", "auf", "acc", False),
        ("across", "über", "acc", False),
        ("for", "für", "acc", True),
        ("without", "ohne", "acc", True),
        ("through", "durch", "acc", False),
        ("against", "gegen", "acc", False),
        ("around", "um", "acc", False),
    )
)

ADVERBS = tuple(
    Adverb(*row)
    for row in (
        ("often", "oft", "freq", True),
        ("always", "immer", "freq", False),
        ("sometimes", "manchmal", "freq", True),
        ("rarely", "selten", "freq", False),
        ("usually", "meistens", "freq", True),
        ("today", "heute", "end", True),
        ("now", "jetzt", "end", True),
        ("tomorrow", "morgen", "end", True),
        ("soon", "bald", "end", True),
        ("here", "hier", "end", False),
        ("there", "dort", "end", False),
        ("again", "wieder", "end", False),
        ("outside", "draußen", "end", False),
        ("early", "früh", "end", False),
        ("late", "spät", "end", False),
        ("quickly", "schnell", "end", False),
        ("slowly", "langsam", "end", False),
        ("quietly", "leise", "end", False),
        ("carefully", "vorsichtig", "end", False),
    )
)

COORDINATORS = (Conjunction("and", "und"), Conjunction("but", "aber"), Conjunction("or", "oder"))
SUBORDINATORS = (
    Conjunction("because", "weil", True),
    Conjunction("although", "obwohl", True),
    Conjunction("if", "wenn", True),
    Conjunction("while", "während", True),
    Conjunction("before", "bevor", True),
    Conjunction("until", "bis"),
)
RELATIVE_EN = "that"
DETERMINERS = ("the", "a", "this", "my", "no")  # English names of the determiners the grammar uses
DETERMINER_WEIGHTS = (0.5, 0.25, 0.1, 0.1, 0.05)

# ---------------------------------------------------------------------------------- German morphology

CASES = ("nom", "acc", "dat")
# per case, per gender ("m", "f", "n") or plural ("p")
DEFINITE = {
    "nom": {"m": "der", "f": "die", "n": "das", "p": "die"},
    "acc": {"m": "den", "f": "die", "n": "das", "p": "die"},
    "dat": {"m": "dem", "f": "der", "n": "dem", "p": "den"},
}
DER_WORD = {  # endings of dies-
    "nom": {"m": "er", "f": "e", "n": "es", "p": "e"},
    "acc": {"m": "en", "f": "e", "n": "es", "p": "e"},
    "dat": {"m": "em", "f": "er", "n": "em", "p": "en"},
}
EIN_WORD = {  # endings of ein-, mein-, kein-
    "nom": {"m": "", "f": "e", "n": "", "p": "e"},
    "acc": {"m": "en", "f": "e", "n": "", "p": "e"},
    "dat": {"m": "em", "f": "er", "n": "em", "p": "en"},
}
WEAK = {  # adjective after a der-word, or after a plural ein-word
    "nom": {"m": "e", "f": "e", "n": "e", "p": "en"},
    "acc": {"m": "en", "f": "e", "n": "e", "p": "en"},
    "dat": {"m": "en", "f": "en", "n": "en", "p": "en"},
}
MIXED = {  # adjective after a singular ein-word
    "nom": {"m": "er", "f": "e", "n": "es"},
    "acc": {"m": "en", "f": "e", "n": "es"},
    "dat": {"m": "en", "f": "en", "n": "en"},
}
STRONG = {  # adjective without a determiner (indefinite plural)
    "nom": {"m": "er", "f": "e", "n": "es", "p": "e"},
    "acc": {"m": "en", "f": "e", "n": "es", "p": "e"},
    "dat": {"m": "em", "f": "er", "n": "em", "p": "en"},
}
RELATIVE = {
    "nom": {"m": "der", "f": "die", "n": "das", "p": "die"},
    "acc": {"m": "den", "f": "die", "n": "das", "p": "die"},
    "dat": {"m": "dem", "f": "der", "n": "dem", "p": "denen"},
}
CONTRACTIONS = {
    ("in", "dem"): "im",
    ("in", "das"): "ins",
    ("an", "dem"): "am",
    ("an", "das"): "ans",
    ("zu", "dem"): "zum",
    ("zu", "der"): "zur",
    ("von", "dem"): "vom",
    ("bei", "dem"): "beim",
}
EIN_STEM = {"a": "ein", "my": "mein", "no": "kein"}


def german_noun_form(noun: Noun, case: str, plural: bool) -> str:
    """The noun in ``case``: dative plural adds ``-n`` (not after -n/-s); weak masculines take ``-(e)n``."""
    if plural:
        return noun.de_pl + "n" if case == "dat" and not noun.de_pl.endswith(("n", "s")) else noun.de_pl
    return noun.de_weak if noun.de_weak and case != "nom" else noun.de


def german_determiner(det: str, gender: str, case: str, plural: bool) -> str:
    """German form of the English determiner ``det`` ("the", "a", "this", "my", "no"); "" for plural "a"."""
    g = "p" if plural else gender
    if det == "the":
        return DEFINITE[case][g]
    if det == "this":
        return "dies" + DER_WORD[case][g]
    if det == "a" and plural:
        return ""
    return EIN_STEM[det] + EIN_WORD[case][g]


def german_adjective_ending(det: str, gender: str, case: str, plural: bool) -> str:
    """Weak after der-words and plural ein-words, mixed after singular ein-words, strong with no determiner."""
    if det in ("the", "this"):
        return WEAK[case]["p" if plural else gender]
    if plural:
        return STRONG[case]["p"] if det == "a" else WEAK[case]["p"]
    return MIXED[case][gender]


# ------------------------------------------------------------------------------------- syntax trees


class NP:
    """A noun phrase: determiner, up to two adjectives, noun, then one PP or one relative clause."""

    __slots__ = ("noun", "det", "plural", "adjs", "pp", "rel", "depth")

    def __init__(self, noun: Noun, det: str, plural: bool, depth: int):
        self.noun, self.det, self.plural, self.depth = noun, det, plural, depth
        self.adjs: list[Adjective] = []
        self.pp: PP | None = None
        self.rel: Clause | None = None


class PP:
    __slots__ = ("prep", "np")

    def __init__(self, prep: Preposition, np: NP):
        self.prep, self.np = prep, np


class Clause:
    """One clause. ``role``: "main", "sub", "comp" (that/whether) or "rel". A relative clause has
    ``head`` (the NP it modifies) and ``gap``: "subj" (head is the subject) or "obj" (head is the object)."""

    __slots__ = ("verb", "subj", "obj", "comp", "adv", "pps", "role", "depth", "head", "gap")

    def __init__(self, verb: Verb, subj: NP | None, obj: NP | None, role: str, depth: int):
        self.verb, self.subj, self.obj, self.role, self.depth = verb, subj, obj, role, depth
        self.comp: Clause | None = None
        self.adv: Adverb | None = None
        self.pps: list[PP] = []
        self.head: NP | None = None
        self.gap = ""

    def plural_subject(self) -> bool:
        return (self.head if self.gap == "subj" else self.subj).plural


class Sentence:
    """A first main clause (optionally after a fronted adverb or a preposed subordinate clause),
    then (conjunction, clause) pairs: main clauses after a coordinator, subordinate clauses after a subordinator."""

    __slots__ = ("first", "fronted", "preposed", "rest")

    def __init__(self, first: Clause):
        self.first = first
        self.fronted = False  # first.adv opens the sentence
        self.preposed: tuple[Conjunction, Clause] | None = None
        self.rest: list[tuple[Conjunction, Clause]] = []


# ---------------------------------------------------------------------------------------- English


def _en_np(np: NP) -> list[str]:
    words = [a.en for a in np.adjs] + [np.noun.en_pl if np.plural else np.noun.en]
    det = np.det
    if det == "a":
        head = [] if np.plural else ["an" if words[0][0] in "aeiou" else "a"]
    elif det == "this":
        head = ["these" if np.plural else "this"]
    else:
        head = [det]
    out = head + words
    if np.pp is not None:
        out += _en_pp(np.pp)
    if np.rel is not None:
        out += _en_clause(np.rel)
    return out


def _en_pp(pp: PP) -> list[str]:
    return pp.prep.en.split() + _en_np(pp.np)


def _en_clause(c: Clause, drop_adverb: bool = False) -> list[str]:
    """English order: [that] subject [freq adverb] verb object PPs [end adverb] [that/whether clause]."""
    verb = (c.verb.en_pl if c.plural_subject() else c.verb.en).split()
    adv = None if drop_adverb else c.adv
    freq = [adv.en] if adv is not None and adv.kind == "freq" else []
    end = [adv.en] if adv is not None and adv.kind == "end" else []
    out = [RELATIVE_EN] if c.role == "rel" else []
    if c.gap != "subj":
        out += _en_np(c.subj)
    out += freq + verb
    if c.obj is not None and c.gap != "obj":
        out += _en_np(c.obj)
    for pp in c.pps:
        out += _en_pp(pp)
    out += end
    if c.comp is not None:
        out += _en_clause(c.comp)
    return out


def _en_sentence(s: Sentence) -> list[str]:
    out: list[str] = []
    if s.preposed is not None:
        conj, clause = s.preposed
        out += [conj.en] + _en_clause(clause) + [","] + _en_clause(s.first)
    elif s.fronted:
        out += [s.first.adv.en] + _en_clause(s.first, drop_adverb=True)
    else:
        out += _en_clause(s.first)
    for conj, clause in s.rest:
        out += ([","] if conj.en == "but" else []) + [conj.en] + _en_clause(clause)
    return _finish(out)


# ----------------------------------------------------------------------------------------- German


def _de_np(np: NP, case: str) -> list[str]:
    g = np.noun.gender
    det = german_determiner(np.det, g, case, np.plural)
    ending = german_adjective_ending(np.det, g, case, np.plural)
    out = ([det] if det else []) + [a.de + ending for a in np.adjs]
    out.append(german_noun_form(np.noun, case, np.plural))
    if np.pp is not None:
        out += _de_pp(np.pp.prep.de, np.pp.prep.case, np.pp.np)
    if np.rel is not None:
        out += _de_relative(np.rel)
    return out


def _de_pp(prep: str, case: str, np: NP) -> list[str]:
    """``prep`` + the NP in ``case``; a singular definite article contracts (in dem -> im)."""
    tokens = _de_np(np, case)
    if np.det == "the" and not np.plural and (prep, tokens[0]) in CONTRACTIONS:
        return [CONTRACTIONS[prep, tokens[0]]] + tokens[1:]
    return [prep] + tokens


def _de_object(c: Clause) -> list[str]:
    if c.obj is None or c.gap == "obj":
        return []
    if c.verb.kind == "prep":
        return _de_pp(c.verb.de_prep, c.verb.de_case, c.obj)
    return _de_np(c.obj, c.verb.kind)  # "acc" or "dat"


def _de_clause(c: Clause, order: str, drop_adverb: bool = False) -> list[str]:
    """``order``: "main" (S V ...), "inverted" (V S ..., after a fronted element) or "final" (S ... V)."""
    subj = _de_np(c.subj, "nom")
    verb = [c.verb.de_pl if c.plural_subject() else c.verb.de]
    adv = [c.adv.de] if c.adv is not None and not drop_adverb else []
    middle = adv + _de_object(c)
    for pp in c.pps:
        middle += _de_pp(pp.prep.de, pp.prep.case, pp.np)
    if order == "main":
        out = subj + verb + middle
    elif order == "inverted":
        out = verb + subj + middle
    else:
        out = subj + middle + verb
    if c.comp is not None:  # extraposed after the verb
        out += [",", c.verb.de_prep] + _de_clause(c.comp, "final")
    return out


def _de_relative(c: Clause) -> list[str]:
    """``, der die Katze sieht,`` / ``, den die Frau sieht,`` / ``, auf den der Mann wartet,`` (verb-final)."""
    head = c.head
    g = "p" if head.plural else head.noun.gender
    verb = [c.verb.de_pl if c.plural_subject() else c.verb.de]
    adv = [c.adv.de] if c.adv is not None else []
    pps = [t for pp in c.pps for t in _de_pp(pp.prep.de, pp.prep.case, pp.np)]
    if c.gap == "subj":
        return [",", RELATIVE["nom"][g]] + adv + _de_object(c) + pps + verb + [","]
    if c.verb.kind == "prep":
        pronoun = [c.verb.de_prep, RELATIVE[c.verb.de_case][g]]
    else:
        pronoun = [RELATIVE[c.verb.kind][g]]
    return [","] + pronoun + _de_np(c.subj, "nom") + adv + pps + verb + [","]


def _de_sentence(s: Sentence) -> list[str]:
    out: list[str] = []
    if s.preposed is not None:
        conj, clause = s.preposed
        out += [conj.de] + _de_clause(clause, "final") + [","] + _de_clause(s.first, "inverted")
    elif s.fronted:
        out += [s.first.adv.de] + _de_clause(s.first, "inverted", drop_adverb=True)
    else:
        out += _de_clause(s.first, "main")
    previous = s.first
    for conj, clause in s.rest:
        if clause.role == "sub":
            out += [",", conj.de] + _de_clause(clause, "final")
        else:  # a comma before aber, and to close a preceding dependent clause before und/oder
            comma = conj.de == "aber" or previous.role == "sub" or previous.comp is not None
            out += ([","] if comma else []) + [conj.de] + _de_clause(clause, "main")
        previous = clause
    return _finish(out)


def _finish(tokens: list[str]) -> list[str]:
    """Add the full stop, drop a comma before another comma or the full stop, capitalise the first word."""
    tokens = tokens + ["."]
    out = [t for t, nxt in zip(tokens, tokens[1:] + [""], strict=True) if not (t == "," and nxt in (",", "."))]
    out[0] = out[0][:1].upper() + out[0][1:]
    return out


def render_pair(s: Sentence) -> tuple[str, str]:
    """The (English, German) natural text of a sentence tree."""
    return detokenize(_en_sentence(s)), detokenize(_de_sentence(s))


def german_noun_phrase(noun: str, adjective: str | None, case: str, definite: bool, plural: bool) -> str:
    """German NP for an English noun and adjective, e.g. ("dog", "small", "acc", True, False) -> ``den kleinen Hund``.

    ``definite``: "the" (``der``) or else "a" (``ein``; no article in the plural). ``case``: "nom", "acc" or "dat".
    """
    np = _lookup_np(noun, adjective, definite, plural)
    return detokenize(_de_np(np, case))


def german_prepositional_phrase(
    preposition: str, noun: str, adjective: str | None, definite: bool, plural: bool
) -> str:
    """German PP for English words, e.g. ("into", "house", None, True, False) -> ``ins Haus``."""
    prep = next((p for p in PREPOSITIONS if p.en == preposition), None)
    if prep is None:
        raise KeyError(f"unknown preposition: {preposition!r}")
    return detokenize(_de_pp(prep.de, prep.case, _lookup_np(noun, adjective, definite, plural)))


def _lookup_np(noun: str, adjective: str | None, definite: bool, plural: bool) -> NP:
    np = NP(NOUN_BY_EN[noun], "the" if definite else "a", plural, 0)
    if adjective is not None:
        np.adjs.append(ADJECTIVE_BY_EN[adjective])
    return np


NOUN_BY_EN = {n.en: n for n in NOUNS}
ADJECTIVE_BY_EN = {a.en: a for a in ADJECTIVES}

# -------------------------------------------------------------------------------------- generator

ANIMATE = tuple(n for n in NOUNS if n.animate)
THINGS = tuple(n for n in NOUNS if not n.animate)
ATTRIBUTIVE_PREPOSITIONS = tuple(p for p in PREPOSITIONS if p.attributive)
PARTICLE_VERBS = frozenset(v.en for v in VERBS if v.kind in ("acc", "prep") and " " in v.en)  # "waits for"
VERBS_BY_KIND = {kind: tuple(v for v in VERBS if v.kind == kind) for kind in ("intr", "acc", "dat", "prep", "clause")}
CLAUSE_KINDS = ("intr", "acc", "dat", "prep", "clause")
CLAUSE_KIND_WEIGHTS = (0.3, 0.42, 0.08, 0.12, 0.08)
REL_KINDS = ("intr", "acc", "dat", "prep")
REL_KIND_WEIGHTS = (0.3, 0.45, 0.1, 0.15)


@dataclass(frozen=True)
class Lexicon:
    """The words a corpus draws from: the tables above, or the first part of each (:func:`lexicon`)."""

    animate: tuple[Noun, ...]
    things: tuple[Noun, ...]
    adjectives: tuple[Adjective, ...]
    adverbs: tuple[Adverb, ...]
    verbs_by_kind: dict[str, tuple[Verb, ...]]

    @property
    def nouns(self) -> tuple[Noun, ...]:
        return self.animate + self.things


def lexicon(fraction: float = 1.0) -> Lexicon:
    """The first ``fraction`` of each noun (animate, thing), adjective, adverb and verb-kind table
    (at least two of each); prepositions and function words are always complete. A smaller lexicon
    repeats each word more often in the same number of sentences (a corpus a small model learns
    faster) without changing the grammar."""
    if not 0 < fraction <= 1:
        raise UserError(f"grammar corpus: lexicon_fraction must be in (0, 1], got {fraction}; fix it in params.yaml")

    def first(words: tuple) -> tuple:
        return words[: max(2, math.ceil(fraction * len(words)))]

    return Lexicon(first(ANIMATE), first(THINGS), first(ADJECTIVES), first(ADVERBS),
                   {kind: first(verbs) for kind, verbs in VERBS_BY_KIND.items()})


FULL_LEXICON = lexicon(1.0)
MAX_DEPTH = 2  # NP attachments and complement clauses nest at most this deep
MAX_CLAUSE_PPS = 2
GROWTH_OPS = ("adjective", "adverb", "clause_pp", "np_pp", "relative", "segment", "prepose")
GROWTH_WEIGHTS = {  # by the number of English tokens still to add
    "long": (1.0, 0.7, 2.0, 1.5, 2.0, 2.5, 0.3),  # >= 10
    "medium": (1.5, 1.0, 1.5, 1.0, 1.5, 1.0, 0.3),  # 4..9
    "short": (3.0, 2.0, 0.5, 0.3, 0.3, 0.0, 0.0),  # 1..3
}


class _Builder:
    """Grows one sentence with random operations; each knows how many English tokens it adds."""

    def __init__(self, rng: random.Random, lex: Lexicon = FULL_LEXICON):
        self.rng = rng
        self.lex = lex
        self.nps: list[NP] = []
        self.clauses: list[Clause] = []
        self.new_nps: list[NP] = []  # made by the operation being tried; kept only if it is applied
        self.new_clauses: list[Clause] = []

    def noun_phrase(self, depth: int, obj: str = "*") -> NP:
        rng = self.rng
        nouns = self.lex.animate if obj == "a" else self.lex.things if obj == "t" else self.lex.nouns
        det = rng.choices(DETERMINERS, DETERMINER_WEIGHTS)[0]
        np = NP(rng.choice(nouns), det, rng.random() < 0.3, depth)
        self.new_nps.append(np)
        return np

    def verb(self, kinds: tuple[str, ...], weights: tuple[float, ...], obj_animate: bool | None = None) -> Verb:
        while True:
            verb = self.rng.choice(self.lex.verbs_by_kind[self.rng.choices(kinds, weights)[0]])
            if obj_animate is None or verb.obj == "*" or verb.obj == ("a" if obj_animate else "t"):
                return verb

    def clause(self, role: str, depth: int) -> Clause:
        """A bare clause: subject, verb and its object or complement clause (made recursively)."""
        kinds, weights = CLAUSE_KINDS, CLAUSE_KIND_WEIGHTS
        if depth >= MAX_DEPTH:
            kinds, weights = REL_KINDS, REL_KIND_WEIGHTS
        verb = self.verb(kinds, weights)
        subj = self.noun_phrase(depth, "a")
        obj = self.noun_phrase(depth, verb.obj) if verb.kind in ("acc", "dat", "prep") else None
        c = Clause(verb, subj, obj, role, depth)
        if verb.kind == "clause":
            c.comp = self.clause("comp", depth + 1)
        self.new_clauses.append(c)
        return c

    def relative(self, head: NP) -> Clause:
        """A bare relative clause on ``head``: the head is its subject (animate heads) or its object."""
        depth = head.depth + 1
        if head.noun.animate and self.rng.random() < 0.55:
            verb = self.verb(REL_KINDS, REL_KIND_WEIGHTS)
            obj = self.noun_phrase(depth, verb.obj) if verb.kind != "intr" else None
            c = Clause(verb, None, obj, "rel", depth)
            c.gap = "subj"
        else:
            verb = self.verb(REL_KINDS[1:], REL_KIND_WEIGHTS[1:], obj_animate=head.noun.animate)
            c = Clause(verb, self.noun_phrase(depth, "a"), None, "rel", depth)
            c.gap = "obj"
        c.head = head
        self.new_clauses.append(c)
        return c

    def grow(self, s: Sentence, room: int) -> int:
        """Try one random operation adding at most ``room`` English tokens; returns the tokens added (0: none)."""
        rng = self.rng
        self.new_nps, self.new_clauses = [], []
        band = "long" if room >= 10 else "medium" if room >= 4 else "short"
        op = rng.choices(GROWTH_OPS, GROWTH_WEIGHTS[band])[0]
        apply = None
        if op == "adjective":
            np = rng.choice(self.nps)
            used = {a.order for a in np.adjs}
            adj = rng.choice(self.lex.adjectives)
            if len(np.adjs) < 2 and adj.order not in used:
                added, apply = 1, lambda: _add_adjective(np, adj)
        elif op == "adverb":
            c = rng.choice(self.clauses)
            adv = rng.choice(self.lex.adverbs)
            if c.adv is None and _adverb_fits(c, adv):
                front = c is s.first and s.preposed is None and adv.frontable and rng.random() < 0.35
                added, apply = 1, lambda: _set_adverb(s, c, adv, front)
        elif op == "clause_pp":
            c = rng.choice(self.clauses)
            prep = rng.choice(PREPOSITIONS)
            if (
                c.comp is None
                and len(c.pps) < MAX_CLAUSE_PPS
                and not _ends_with_relative(_last_np(c))
                and not (c.verb.kind == "intr" and f"{c.verb.en} {prep.en}" in PARTICLE_VERBS)
            ):
                pp = PP(prep, self.noun_phrase(c.depth))
                added, apply = len(_en_pp(pp)), lambda: c.pps.append(pp)
        elif op in ("np_pp", "relative"):
            np = rng.choice(self.nps)
            if np.depth < MAX_DEPTH and np.pp is None and np.rel is None:
                if op == "np_pp":
                    pp = PP(rng.choice(ATTRIBUTIVE_PREPOSITIONS), self.noun_phrase(np.depth + 1))
                    added, apply = len(_en_pp(pp)), lambda: setattr(np, "pp", pp)
                else:
                    rel = self.relative(np)
                    added, apply = len(_en_clause(rel)), lambda: setattr(np, "rel", rel)
        elif op == "segment":
            if rng.random() < 0.5:
                conj, c = rng.choice(COORDINATORS), self.clause("main", 0)
                added = len(_en_clause(c)) + (2 if conj.en == "but" else 1)
            else:
                conj, c = rng.choice(SUBORDINATORS), self.clause("sub", 0)
                added = len(_en_clause(c)) + 1
            apply = lambda: s.rest.append((conj, c))  # noqa: E731
        elif op == "prepose" and s.preposed is None and not s.fronted:
            conj = rng.choice([k for k in SUBORDINATORS if k.preposable])
            c = self.clause("sub", 0)
            added, apply = len(_en_clause(c)) + 2, lambda: setattr(s, "preposed", (conj, c))
        if apply is None or added > room:
            return 0
        apply()
        self.nps += self.new_nps
        self.clauses += self.new_clauses
        return added


def _ends_with_relative(np: NP | None) -> bool:
    """Whether English ``np`` ends with a relative clause (its own, or that of the NP in its PP)."""
    while np is not None:
        if np.rel is not None:
            return True
        np = np.pp.np if np.pp is not None else None
    return False


def _last_np(c: Clause) -> NP | None:
    """The NP a clause's English ends with so far (its last PP's, else its object), if any."""
    if c.pps:
        return c.pps[-1].np
    return c.obj if c.gap != "obj" else None


def _adverb_fits(c: Clause, adv: Adverb) -> bool:
    """A frequency adverb goes before the verb (not after a subject ending in a relative clause); an
    end adverb at the end (not in a clause with a complement clause, nor after a relative clause)."""
    if adv.kind == "freq":
        return c.gap == "subj" or not _ends_with_relative(c.subj)
    return c.comp is None and not _ends_with_relative(_last_np(c))


def _ambiguous(c: Clause, s: Sentence) -> bool:
    """Whether English words of ``c`` follow a relative clause they could belong to, where German would
    differ: a frequency adverb after a subject ending in one (``the dog that sleeps often sees``), or a PP
    or end adverb after an object or PP ending in one (``sees the dog that sleeps in the park``)."""
    if c.adv is not None and c.adv.kind == "freq" and c.gap != "subj" and _ends_with_relative(c.subj):
        return True
    nps = ([c.obj] if c.obj is not None and c.gap != "obj" else []) + [pp.np for pp in c.pps]
    end_adverb = c.adv is not None and c.adv.kind == "end" and not (c is s.first and s.fronted)
    return any(_ends_with_relative(np) for np in nps[: len(nps) if end_adverb else -1])


def _add_adjective(np: NP, adj: Adjective) -> None:
    np.adjs.append(adj)
    np.adjs.sort(key=lambda a: a.order)


def _set_adverb(s: Sentence, c: Clause, adv: Adverb, front: bool) -> None:
    c.adv = adv
    if front:
        s.fronted = True


def generate_pair(
    rng: random.Random, length: int, max_ops: int = 12, lex: Lexicon = FULL_LEXICON
) -> tuple[str, str] | None:
    """One (English, German) pair whose English has exactly ``length`` tokens, or None if this try missed.

    Starts from one bare clause and applies random growth operations that fit the tokens still
    missing; ``max_ops`` consecutive misfits give up.
    """
    b = _Builder(rng, lex)
    s = Sentence(b.clause("main", 0))
    b.nps, b.clauses = b.new_nps, b.new_clauses
    size = len(_en_sentence(s))
    misses = 0
    while size < length:
        added = b.grow(s, length - size)
        if added:
            size, misses = size + added, 0
        else:
            misses += 1
            if misses >= max_ops:
                return None
    if len(_en_sentence(s)) != length or any(_ambiguous(c, s) for c in b.clauses):
        return None
    return render_pair(s)


def sample_pairs(
    rng: random.Random, count: int, min_words: int, max_words: int, seen: set[str], max_tries: int = 500,
    lex: Lexicon = FULL_LEXICON,
) -> list[tuple[str, str]]:
    """``count`` pairs with English lengths spread evenly over [min_words, max_words] (tokens), none in ``seen``.

    Each accepted English sentence is added to ``seen``; ``max_tries`` failures for one target length
    give a UserError (the grammar has too few distinct sentences of that length).
    """
    span = max_words - min_words + 1
    lengths = [min_words + i % span for i in range(count)]
    rng.shuffle(lengths)
    pairs = []
    for length in lengths:
        for _ in range(max_tries):
            pair = generate_pair(rng, length, lex=lex)
            if pair is not None and pair[0] not in seen:
                seen.add(pair[0])
                pairs.append(pair)
                break
        else:
            raise UserError(
                f"grammar corpus: could not generate another distinct sentence of {length} tokens "
                f"after {max_tries} tries; lower the split sizes or raise min_words in params.yaml"
            )
    return pairs


MIN_LENGTH = 3  # "Dogs sleep."


def build_grammar_corpus(
    out: Path,
    *,
    seed: int,
    num_train: int,
    num_val: int,
    num_test: int,
    min_words: int,
    max_words: int,
    num_longer: int,
    longer_max_words: int,
    lexicon_fraction: float = 1.0,
) -> DatasetMeta:
    """Write the grammar corpus to ``out`` as ``{train,val,test}.parquet`` (``PARALLEL``) and ``meta.json``.

    English lengths (``tokenize`` tokens, punctuation included) are spread evenly over
    [min_words, max_words] in every split; the test split then holds ``num_longer`` more pairs with
    lengths in (max_words, longer_max_words]. No English sentence occurs twice in the corpus.
    ``lexicon_fraction`` < 1 draws from the first part of each word table (:func:`lexicon`).
    Row ids count from 0 per split. Same seed => byte-identical files; ``out`` is replaced whole.
    """
    if not MIN_LENGTH <= min_words <= max_words:
        raise UserError(
            f"grammar corpus: need {MIN_LENGTH} <= min_words ({min_words}) <= max_words ({max_words}); "
            "fix them in params.yaml"
        )
    if num_longer > 0 and longer_max_words <= max_words:
        raise UserError(
            f"grammar corpus: longer_max_words ({longer_max_words}) must exceed max_words ({max_words}) "
            "when num_longer > 0; fix it in params.yaml"
        )
    sizes = {"num_train": num_train, "num_val": num_val, "num_test": num_test, "num_longer": num_longer}
    if min(sizes.values()) < 0 or num_train == 0:
        raise UserError(f"grammar corpus: sizes must be >= 0 and num_train > 0, got {sizes}; fix them in params.yaml")
    lex = lexicon(lexicon_fraction)
    rng = random.Random(seed)
    seen: set[str] = set()
    splits = {
        "train": sample_pairs(rng, num_train, min_words, max_words, seen, lex=lex),
        "val": sample_pairs(rng, num_val, min_words, max_words, seen, lex=lex),
        "test": sample_pairs(rng, num_test, min_words, max_words, seen, lex=lex),
    }
    splits["test"] += sample_pairs(rng, num_longer, max_words + 1, longer_max_words, seen, lex=lex)
    meta = DatasetMeta(
        name="grammar_en_de",
        task="parallel",
        class_names=[],
        height=0,
        width=0,
        channels=0,
        source=f"grammar generator, seed {seed}, lexicon fraction {lexicon_fraction}",
        sizes={split: len(splits[split]) for split in SPLITS},
        languages=["en", "de"],
    )
    _write_parallel(out, {split: [(i, *pair) for i, pair in enumerate(splits[split])] for split in SPLITS}, meta)
    return meta


def _write_parallel(out: Path, splits: dict[str, list[tuple[int, str, str]]], meta: DatasetMeta) -> None:
    """``splits``: per split its (id, source, target) rows."""
    with atomic_directory(out) as tmp:
        for split in SPLITS:
            rows = splits[split]
            columns = {
                "id": [int(r[0]) for r in rows],
                "source": [r[1] for r in rows],
                "target": [r[2] for r in rows],
            }
            write_split(columns, PARALLEL, tmp / f"{split}.parquet")
        write_meta(meta, tmp)


def lexicon_stats(lex: Lexicon = FULL_LEXICON) -> dict[str, int]:
    """Sizes of the grammar's lexicon: entries per table, and the distinct word forms each language can emit."""
    nouns, adjectives, adverbs = lex.nouns, lex.adjectives, lex.adverbs
    verbs = tuple(v for kind in lex.verbs_by_kind.values() for v in kind)
    en = {RELATIVE_EN, "a", "an", "the", "this", "these", "my", "no"}
    en |= {w for n in nouns for w in (n.en, n.en_pl)} | {a.en for a in adjectives}
    en |= {w for v in verbs for form in (v.en, v.en_pl) for w in form.split()}
    en |= {w for p in PREPOSITIONS for w in p.en.split()} | {a.en for a in adverbs}
    en |= {c.en for c in COORDINATORS + SUBORDINATORS}
    de: set[str] = set(CONTRACTIONS.values())
    for case in CASES:
        for plural in (False, True):
            for gender in "mfn":
                de |= {german_determiner(d, gender, case, plural) for d in DETERMINERS} - {""}
                de |= {a.de + german_adjective_ending(d, gender, case, plural) for a in adjectives for d in DETERMINERS}
            de |= {german_noun_form(n, case, plural) for n in nouns}
        de |= set(RELATIVE[case].values())
    de |= {w for v in verbs for w in (v.de, v.de_pl, v.de_prep) if w} | {p.de for p in PREPOSITIONS}
    de |= {a.de for a in adverbs} | {c.de for c in COORDINATORS + SUBORDINATORS}
    return {
        "nouns": len(nouns),
        "adjectives": len(adjectives),
        "verbs": len(verbs),
        "prepositions": len(PREPOSITIONS),
        "adverbs": len(adverbs),
        "conjunctions": len(COORDINATORS) + len(SUBORDINATORS),
        "english_words": len(en),
        "german_words": len(de),
    }


# ---------------------------------------------------------------------------------- real corpora

LANGUAGE_CODE = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")


def load_parallel_corpus(
    root: Path, out: Path, *, source_lang: str, target_lang: str, seed: int, val_fraction: float
) -> DatasetMeta:
    """Write a local parallel corpus to ``out`` as ``{train,val,test}.parquet`` (``PARALLEL``) and ``meta.json``.

    ``root`` holds plain UTF-8 text, one sentence per line, line i of one language translating line
    i of the other (Multi30k style): ``train.<lang>`` and ``test.<lang>`` are required (name
    Multi30k's test2016 files ``test.<lang>``); ``val.<lang>`` is optional, and without it a seeded
    ``val_fraction`` of the train pairs becomes val. Lines are stripped and pairs with an empty side
    dropped. Row ids are 0-based line numbers in the file the pair came from. ``out`` is replaced whole.
    """
    root = Path(root)
    for lang in (source_lang, target_lang):
        if not LANGUAGE_CODE.fullmatch(lang):
            raise UserError(f"parallel corpus: bad language code {lang!r} (e.g. en, de); fix it in params.yaml")
    if source_lang == target_lang:
        raise UserError(f"parallel corpus: source and target language are both {source_lang!r}; fix params.yaml")
    if not root.is_dir():
        raise UserError(f"parallel corpus folder not found: {root} (set its root in params.yaml)")
    splits = {"train": _read_pairs(root, "train", source_lang, target_lang)}
    if (root / f"val.{source_lang}").exists() or (root / f"val.{target_lang}").exists():
        splits["val"] = _read_pairs(root, "val", source_lang, target_lang)
    else:
        splits["train"], splits["val"] = _split_off(splits["train"], seed, val_fraction, root)
    splits["test"] = _read_pairs(root, "test", source_lang, target_lang)
    for split in SPLITS:
        if not splits[split]:
            raise UserError(f"parallel corpus {root}: the {split} split has no sentence pairs")
    meta = DatasetMeta(
        name="parallel",
        task="parallel",
        class_names=[],
        height=0,
        width=0,
        channels=0,
        source=str(root),
        sizes={split: len(splits[split]) for split in SPLITS},
        languages=[source_lang, target_lang],
    )
    _write_parallel(out, splits, meta)
    return meta


def _read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise UserError(f"parallel corpus file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise UserError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last line
    return lines


def _read_pairs(root: Path, split: str, source_lang: str, target_lang: str) -> list[tuple[int, str, str]]:
    """(line number, source, target) of ``root/<split>.<lang>``, stripped, pairs with an empty side dropped."""
    src_path, tgt_path = root / f"{split}.{source_lang}", root / f"{split}.{target_lang}"
    src, tgt = _read_lines(src_path), _read_lines(tgt_path)
    if len(src) != len(tgt):
        raise UserError(
            f"parallel corpus files differ in line count: {src_path} has {len(src)} lines, {tgt_path} has {len(tgt)}"
        )
    rows = [(i, s.strip(), t.strip()) for i, (s, t) in enumerate(zip(src, tgt, strict=True))]
    return [row for row in rows if row[1] and row[2]]


def _split_off(rows: list, seed: int, val_fraction: float, root: Path) -> tuple[list, list]:
    """Seeded split of ``rows`` into (train, val), each kept in file order; val gets ``val_fraction`` of them."""
    if not 0 < val_fraction < 1:
        raise UserError(
            f"parallel corpus {root} has no val files, so val_fraction ({val_fraction}) must be in (0, 1); "
            "fix it in params.yaml"
        )
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    val_ids = set(order[: round(len(rows) * val_fraction)])
    return [r for i, r in enumerate(rows) if i not in val_ids], [r for i, r in enumerate(rows) if i in val_ids]
