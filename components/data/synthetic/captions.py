"""English captions of the COCO stand-in's images, written from each image's own objects.

COCO has about five captions per image, by different people: sentences of 8 to 20-odd words
(10.5 on average) naming the main things, how many there are and roughly where, each in its own
words. :func:`scene_captions` writes ``CAPTIONS_PER_IMAGE`` such sentences of one stand-in image,
each from a different template (``_TEMPLATES``, picked at random without repetition) with its own
word choices, from the objects the image shows (its visible objects, the ones its boxes list):

- an object is its class's colour and digit (``"3-red"`` -> ``a red 3``), a size word from its
  mask area as COCO sizes objects (small < 32², medium < 96² pixels at 640x480: ``small``, ``tiny``,
  ``little`` / none / ``large``, ``big``; ``huge`` above a fifth of the image; left out a third of
  the time) and a position from
  the 3x3 cell its box centre lies in (``in the top left corner``, ``near the bottom``, ``in the
  center``);
- a caption names the largest objects first (as people name what stands out), counts ("five
  digits", "three red digits and two blue ones", "two 7s"), relations of the two largest (``to the
  left of``, ``above``), where most objects are, and says so when an image is empty;
- like COCO's, captions start with a capital and mostly (``FULL_STOP``) end with a full stop.

On 1,065 stand-in images at 128 px: 10.9 words per caption on average (7 to 24; half within
9 to 12), 143 distinct words, 86% of the captions distinct.

Every count, colour, digit, size and position is true of the image, so a captioning model can
learn to read them off the pixels. The text depends on the image's objects and on ``rng`` alone
(the caller's own stream: the images are drawn as they were without captions).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

CAPTIONS_PER_IMAGE = 5
FULL_STOP = 0.85  # share of captions ending in "." (COCO's end in one or not, at random)
COCO_SMALL = 32**2 / (640 * 480)  # COCO's small / medium bounds, as shares of its typical image
COCO_MEDIUM = 96**2 / (640 * 480)
HUGE = 0.2  # share of the image above which a large object may be "huge"
NUMBERS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve")
ROWS, COLUMNS = ("top", "middle", "bottom"), ("left", "center", "right")


@dataclass(frozen=True)
class _Thing:
    """One visible object as a caption sees it."""

    digit: int
    colour: str
    area: float  # mask pixels / image pixels
    row: int  # 0 top, 1 middle, 2 bottom (of its box centre)
    col: int  # 0 left, 1 center, 2 right
    x: float  # box centre, as shares of the image side
    y: float


def _pick(rng: np.random.Generator, options) -> str:
    return options[int(rng.integers(len(options)))]


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou8" or word in ("11", "18") else "a"


def _count(n: int) -> str:
    return NUMBERS[n] if n < len(NUMBERS) else "many"


def _size(rng: np.random.Generator, thing: _Thing) -> str:
    """A size word true of the object, or (a third of the time, and for medium objects) none."""
    if rng.random() < 1 / 3:
        return ""
    if thing.area < COCO_SMALL:
        return _pick(rng, ("small", "tiny", "little"))
    if thing.area < COCO_MEDIUM:
        return ""
    return _pick(rng, ("large", "big", "huge") if thing.area > HUGE else ("large", "big"))


def _noun(rng: np.random.Generator, thing: _Thing, size: bool = True, article: bool = True) -> str:
    """``a large red 7`` / ``red 7``."""
    words = [w for w in (_size(rng, thing) if size else "", thing.colour, str(thing.digit)) if w]
    return " ".join(([_article(words[0])] if article else []) + words)


def _scene_word(rng: np.random.Generator) -> str:
    return _pick(rng, ("picture", "image", "photo", "scene"))


def _background(rng: np.random.Generator) -> str:
    return _pick(rng, ("a grey background", "a blurry background", "a muted background", "a textured background",
                       "a colorful background"))


def _where(rng: np.random.Generator, thing: _Thing) -> str:
    """``in the top left corner`` / ``near the bottom`` / ``in the center``, sometimes ``of the picture``."""
    row, col = ROWS[thing.row], COLUMNS[thing.col]
    if (thing.row, thing.col) == (1, 1):
        return _pick(rng, ("in the center", "in the middle", "right in the middle"))
    if thing.row == 1:
        return f"{_pick(rng, ('on the', 'near the', 'at the'))} {col} {_pick(rng, ('side', 'edge'))}"
    if thing.col == 1:
        return f"{_pick(rng, ('at the', 'near the'))} {row}"
    place = f"{_pick(rng, ('in the', 'near the'))} {row} {col}"
    return place + _pick(rng, (" corner", ""))


def _of_scene(rng: np.random.Generator, phrase: str) -> str:
    """A position phrase, sometimes with ``of the <picture>``."""
    return f"{phrase} of the {_scene_word(rng)}" if rng.random() < 0.35 else phrase


def _digits_word(rng: np.random.Generator, n: int) -> str:
    return _pick(rng, ("digit", "number")) + ("s" if n != 1 else "")


def _relation(first: _Thing, second: _Thing) -> str:
    """Where the first object is seen from the second, by their centres' larger offset."""
    dx, dy = first.x - second.x, first.y - second.y
    if abs(dx) >= abs(dy):
        return "to the left of" if dx < 0 else "to the right of"
    return "above" if dy < 0 else "below"


# --- templates: (rng, objects largest first) -> one caption; each applies from some object count ---


def _maybe(rng: np.random.Generator, share: float, text: str) -> str:
    """``text`` with probability ``share``, else nothing (an optional part of a caption)."""
    return text if rng.random() < share else ""


def _main_where(rng, things):
    """``A large red 7 sits in the top left corner of the picture`` (sometimes the second object too:
    ``, and a small blue 2 is near the bottom``)."""
    main = things[0]
    verb = _pick(rng, ("sits", "is", "appears", "can be seen"))
    text = f"{_noun(rng, main)} {verb} {_of_scene(rng, _where(rng, main))}"
    if len(things) > 1 and rng.random() < 0.2:
        text += f" , {_pick(rng, ('and', 'while'))} {_noun(rng, things[1])} is {_where(rng, things[1])}"
    return text


def _count_and_main(rng, things):
    """``Five digits are scattered across the image , the biggest is a green 4`` / ``Five digits of
    different colors on a grey background``."""
    n, main = len(things), things[0]
    if n == 1:
        lone = _noun(rng, main, article=False)
        return f"a single {lone} {_where(rng, main)} of an otherwise empty {_scene_word(rng)}"
    if rng.random() < 0.4:
        colours = {t.colour for t in things}
        how = "of different colors" if len(colours) > 1 else f"all in {main.colour}"
        return f"{_count(n)} {_digits_word(rng, n)} {how} on {_background(rng)}"
    spread = _pick(rng, ("are scattered across", "fill", "cover"))
    return (f"{_count(n)} {_digits_word(rng, n)} {spread} the {_scene_word(rng)} , the biggest "
            f"{_pick(rng, ('is', 'being'))} {_noun(rng, main, size=False)}")


def _two_largest(rng, things):
    """``A big green 3 to the left of a small blue 5 on a textured background``."""
    if len(things) == 1:
        return f"a close up of {_noun(rng, things[0])} on {_background(rng)}"
    first, second = things[0], things[1]
    return (f"{_noun(rng, first)} {_relation(first, second)} {_noun(rng, second)}"
            f"{_maybe(rng, 0.35, ' on ' + _background(rng))}")


def _colours(rng, things):
    """``Three red digits and two blue ones on a grey background``."""
    if len(things) == 1:
        return f"just one digit , {_noun(rng, things[0])} , {_where(rng, things[0])}"
    counts = Counter(t.colour for t in things).most_common()
    (c1, n1), rest = counts[0], counts[1:]
    head = f"{_count(n1)} {c1} {_digits_word(rng, n1)}"
    if not rest:
        return f"{head} and nothing else on {_background(rng)}"
    c2, n2 = rest[0]
    more = _maybe(rng, 0.5, " and some others") if len(rest) > 1 else ""
    second = f"a {c2} one" if n2 == 1 else f"{_count(n2)} {c2} ones"
    where = _pick(rng, (f" in the {_scene_word(rng)}", f" on {_background(rng)}", ""))
    return f"{head} and {second}{more}{where}"


def _listing(rng, things):
    """``A picture showing a red 7 , a blue 2 and a black 9 among other digits``."""
    word = _scene_word(rng)
    scene = f"{_article(word)} {word} {_pick(rng, ('showing', 'with', 'of'))}"
    if len(things) == 1:
        return f"{scene} nothing but {_noun(rng, things[0])} on {_background(rng)}"
    named = [_noun(rng, t, size=False) for t in things[: 3 if rng.random() < 0.2 else 2]]
    listed = " , ".join(named[:-1]) + " and " + named[-1]
    others = len(things) - len(named)
    tail = f" and {_count(others)} more" if 0 < others < len(NUMBERS) else " among many other digits" if others else ""
    return f"{scene} {listed}{_maybe(rng, 0.5, tail)}"


def _repeats(rng, things):
    """``Two 7s in different colors , one of them in the middle of the scene``."""
    n = len(things)
    if n == 1:
        return f"there is only one digit here , {_noun(rng, things[0])} {_where(rng, things[0])}"
    digit, k = Counter(t.digit for t in things).most_common(1)[0]
    if k == 1:
        return f"{_count(n)} different digits including {_noun(rng, things[0])} {_where(rng, things[0])}"
    same = [t for t in things if t.digit == digit]
    colours = len({t.colour for t in same})
    how = "in different colors" if colours > 1 else f"all {same[0].colour}"
    return f"{_count(k)} {digit}s {how} , one of them {_where(rng, same[0])}"


def _there_is(rng, things):
    """``There is a large cyan 6 at the bottom of this busy image``."""
    n = len(things)
    kind = "busy " if n >= 6 else "simple " if n <= 2 else ""
    where = _where(rng, things[0])
    return f"there is {_noun(rng, things[0])} {where}{_maybe(rng, 0.4, f' of this {kind}{_scene_word(rng)}')}"


def _crowded_part(rng, things):
    """``Most of the digits are grouped near the bottom right of the image`` (three or more objects)."""
    halves = Counter(("top" if t.y < 0.5 else "bottom", "left" if t.x < 0.5 else "right") for t in things)
    (row, col), k = halves.most_common(1)[0]
    n = len(things)
    if 2 * k > n:
        return (f"{_pick(rng, ('most of the', 'many of the'))} {_digits_word(rng, 2)} are "
                f"{_pick(rng, ('grouped', 'crowded', 'clustered'))} near the {row} {col}"
                f"{_maybe(rng, 0.5, ' of the ' + _scene_word(rng))}")
    return f"{_count(n)} colored {_digits_word(rng, n)} spread evenly all over the {_scene_word(rng)}"


_TEMPLATES = (  # (template, the fewest objects it describes)
    (_main_where, 1), (_count_and_main, 1), (_two_largest, 1), (_colours, 1), (_listing, 1), (_repeats, 1),
    (_there_is, 1), (_crowded_part, 3),
)  # fmt: skip

_EMPTY = (
    "an empty {scene} showing only {background} and nothing else",
    "there are no digits anywhere in this {scene} , just {background}",
    "a plain {scene} of {background} without any numbers on it",
    "nothing but {background} fills this empty {scene}",
    "an image with no objects at all , only {background}",
    "{background} with no digits or shapes anywhere in the {scene}",
)


def _things(boxes: list, labels: list[int], masks: list[np.ndarray], size: int, colours: list[str]) -> list[_Thing]:
    """The visible objects, largest mask first (ties: box order)."""
    things = []
    for (x0, y0, x1, y1), label, mask in zip(boxes, labels, masks, strict=True):
        digit, colour = divmod(label - 1, len(colours))
        x, y = (x0 + x1) / 2 / size, (y0 + y1) / 2 / size
        things.append(_Thing(digit, colours[colour], float(mask.sum()) / size**2, min(int(y * 3), 2),
                             min(int(x * 3), 2), x, y))
    return sorted(things, key=lambda t: -t.area)


def _finish(rng: np.random.Generator, text: str) -> str:
    """One space between words, commas attached, a capital first and mostly a full stop last."""
    text = " ".join(text.split()).replace(" ,", ",")
    return text[0].upper() + text[1:] + ("." if rng.random() < FULL_STOP else "")


def scene_captions(rng: np.random.Generator, boxes: list, labels: list[int], masks: list[np.ndarray], size: int,
                   colours: list[str]) -> list[str]:
    """``CAPTIONS_PER_IMAGE`` different captions of one image of ``size`` px from its objects (boxes
    ``[x0, y0, x1, y1)``, labels ``1 + digit * len(colours) + colour``, ``{0, 1}`` masks)."""
    things = _things(boxes, labels, masks, size, colours)
    if not things:
        chosen = rng.permutation(len(_EMPTY))[:CAPTIONS_PER_IMAGE]
        return [_finish(rng, _EMPTY[k].format(scene=_scene_word(rng), background=_background(rng))) for k in chosen]
    usable = [template for template, least in _TEMPLATES if len(things) >= least]
    chosen = rng.permutation(len(usable))[:CAPTIONS_PER_IMAGE]
    return [_finish(rng, usable[k](rng, things)) for k in chosen]
