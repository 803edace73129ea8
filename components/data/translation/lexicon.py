"""The grammar's word tables: English/German nouns, adjectives, verbs, prepositions, adverbs and
conjunctions, the function words, and :func:`lexicon` (the first part of each table).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

from components.errors import UserError


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

NOUN_BY_EN = {n.en: n for n in NOUNS}
ADJECTIVE_BY_EN = {a.en: a for a in ADJECTIVES}
ANIMATE = tuple(n for n in NOUNS if n.animate)
THINGS = tuple(n for n in NOUNS if not n.animate)
VERBS_BY_KIND = {kind: tuple(v for v in VERBS if v.kind == kind) for kind in ("intr", "acc", "dat", "prep", "clause")}


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
