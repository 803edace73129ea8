"""Interpretable cells (Karpathy, Johnson & Fei-Fei 2015): properties of the text each character
sits in, and the recurrent unit whose activation correlates best with each.

A property is a number per character, computed from the text alone:

- ``line_position``: characters since the line (sentence) began, the counter a model needs to
  predict where a line ends;
- ``word_position``: characters since the current word began (0 on spaces and punctuation);
- ``comma_due``: 1 inside a sentence-initial subordinate clause (``Before the cooks buy this table,``)
  up to its comma: the model must remember that a comma is still owed.
"""

from __future__ import annotations

import numpy as np

from components.data.translation.lexicon import SUBORDINATORS

CLAUSE_OPENERS = frozenset(w.capitalize() for c in SUBORDINATORS if c.preposable for w in (c.en, c.de))


def text_properties(text: str) -> dict[str, np.ndarray]:
    """Each property's value at every character of ``text`` (see the module docstring)."""
    line, word, due = (np.zeros(len(text)) for _ in range(3))
    since_line = since_word = 0
    owed = False
    for i, ch in enumerate(text):
        if i == 0 or text[i - 1] == "\n":
            since_line = 0
            owed = text[i:].split(" ", 1)[0] in CLAUSE_OPENERS
        line[i] = since_line
        since_word = since_word + 1 if ch.isalnum() else 0
        word[i] = since_word
        due[i] = float(owed)
        if ch == ",":
            owed = False
        since_line += 1
    return {"line_position": line, "word_position": word, "comma_due": due}


def best_cells(activations: np.ndarray, properties: dict[str, np.ndarray]) -> dict[str, tuple[int, float]]:
    """For each property with any variance: (unit, Pearson r) of the unit of ``activations``
    (T, H) whose correlation with it is largest in absolute value."""
    a = activations - activations.mean(0)
    a_norm = np.sqrt((a**2).sum(0)) + 1e-12
    found = {}
    for name, values in properties.items():
        v = values - values.mean()
        if not np.any(v):
            continue
        r = (a * v[:, None]).sum(0) / (a_norm * np.sqrt((v**2).sum()))
        unit = int(np.argmax(np.abs(r)))
        found[name] = (unit, float(r[unit]))
    return found


def clause_excerpt_start(text: str) -> int:
    """Where the first line opening with a subordinate clause begins (0 if none): an excerpt from
    there shows a ``comma_due`` stretch."""
    start = 0
    for line in text.split("\n"):
        if line.split(" ", 1)[0] in CLAUSE_OPENERS:
            return start
        start += len(line) + 1
    return 0
