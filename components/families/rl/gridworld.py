"""The course's 4x3 grid world (Russell & Norvig, AIMA ch. 17) as a gymnasium env with a planning interface.

Cells use the textbook's coordinates ``(x, y)``: x = 1..4 columns left to right, y = 1..3 rows bottom to top::

    y=3   .    .    .   +1
    y=2   .   ###   .   -1
    y=1   S    .    .    .
         x=1  x=2  x=3  x=4

A wall fills (2, 2); the exits are +1 at (4, 3) and -1 at (4, 2); the agent starts at (1, 1).

**States.** The 11 non-wall cells, numbered row by row from the bottom, left to right (see :data:`STATES`):
0 (1,1), 1 (2,1), 2 (3,1), 3 (4,1), 4 (1,2), 5 (3,2), 6 (4,2), 7 (1,3), 8 (2,3), 9 (3,3), 10 (4,3).

**Actions.** 0 up, 1 right, 2 down, 3 left (:data:`ACTIONS`). The intended move happens with probability
``intended_prob``; each of the two perpendicular moves with ``(1 - intended_prob) / 2``. A move into the wall
or off the grid leaves the agent where it is.

**Rewards** follow the textbook's R(s) formulation. Each step taken from a non-terminal state s yields
r(s) = ``step_reward``; the step that enters an exit additionally yields the exit's value (+1 or -1) and
terminates the episode. The undiscounted return of an episode is therefore the sum of r(s) over the
non-terminal states visited (with repeats) plus the exit's value, and its expectation under a policy is the
textbook's utility U(s) = R(s) + gamma * sum_s' P(s' | s, a) U(s') with gamma = 1 and U(exit) = +-1, which is
what :func:`components.families.rl.tabular.value_iteration` computes from :meth:`GridWorld.transition_model`.
With gamma < 1 a sampled discounted return counts the exit value one discount factor earlier than the
textbook's U (gamma^(k-1) instead of gamma^k after k steps); planning keeps the textbook's definition.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np

WIDTH, HEIGHT = 4, 3
WALL = (2, 2)
START = (1, 1)
EXITS: dict[tuple[int, int], float] = {(4, 3): 1.0, (4, 2): -1.0}
STATES: list[tuple[int, int]] = [(x, y) for y in range(1, HEIGHT + 1) for x in range(1, WIDTH + 1) if (x, y) != WALL]
ACTIONS = ("up", "right", "down", "left")
MOVES = ((0, 1), (1, 0), (0, -1), (-1, 0))  # (dx, dy) of each action
ARROWS = ("↑", "→", "↓", "←")
_INDEX = {cell: index for index, cell in enumerate(STATES)}


def state_index(cell: tuple[int, int]) -> int:
    """The observation (0..10) of a textbook cell ``(x, y)``."""
    return _INDEX[tuple(cell)]


def cell(index: int) -> tuple[int, int]:
    """The textbook cell ``(x, y)`` of an observation (0..10)."""
    return STATES[index]


def _move(position: tuple[int, int], action: int) -> tuple[int, int]:
    """Where a deterministic move of ``action`` from ``position`` lands (bumping leaves it in place)."""
    dx, dy = MOVES[action]
    target = (position[0] + dx, position[1] + dy)
    inside = 1 <= target[0] <= WIDTH and 1 <= target[1] <= HEIGHT
    return target if inside and target != WALL else position


class GridWorld(gym.Env):
    """AIMA's stochastic 4x3 grid world; see the module docstring for states, actions and rewards.

    Observation: ``Discrete(11)``, an index into :data:`STATES`. Action: ``Discrete(4)``, an index into
    :data:`ACTIONS`. Episodes end (``terminated``) on entering an exit; wrap in ``TimeLimit`` to truncate.
    """

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4}
    STATES = STATES
    ACTIONS = ACTIONS
    state_index = staticmethod(state_index)
    cell = staticmethod(cell)

    def __init__(self, step_reward: float = -0.04, intended_prob: float = 0.8, render_mode: str | None = None):
        if not 0.0 <= intended_prob <= 1.0:
            raise ValueError(f"intended_prob must be in [0, 1], got {intended_prob}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        self.step_reward = float(step_reward)
        self.intended_prob = float(intended_prob)
        self.render_mode = render_mode
        self.observation_space = gym.spaces.Discrete(len(STATES))
        self.action_space = gym.spaces.Discrete(len(ACTIONS))
        self.start = state_index(START)
        self.terminal = np.array([c in EXITS for c in STATES])
        self.exit_value = np.array([EXITS.get(c, 0.0) for c in STATES])
        # per (state, action): the possible next states and their cumulative probabilities, for sampling
        self._outcomes = [[self.transitions(s, a) for a in range(len(ACTIONS))] for s in range(len(STATES))]
        self._next = [[[n for _, n in out] for out in row] for row in self._outcomes]
        self._cumulative = [[np.cumsum([p for p, _ in out]).tolist() for out in row] for row in self._outcomes]
        self._state = self.start

    # --- the model -------------------------------------------------------------------------------------

    def transitions(self, state: int, action: int) -> list[tuple[float, int]]:
        """``[(probability, next_state), ...]`` of ``action`` in ``state``, merged, with positive probabilities.

        An exit is absorbing: ``[(1.0, state)]``.
        """
        position = STATES[state]
        if position in EXITS:
            return [(1.0, state)]
        slip = (1.0 - self.intended_prob) / 2
        merged: dict[int, float] = {}
        for direction, prob in ((action, self.intended_prob), ((action + 1) % 4, slip), ((action + 3) % 4, slip)):
            if prob > 0:
                target = state_index(_move(position, direction))
                merged[target] = merged.get(target, 0.0) + prob
        return [(prob, target) for target, prob in merged.items()]

    def transition_model(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The known model for planning, in the textbook's R(s) form.

        Returns ``P`` (S, A, S) with ``P[s, a, s']`` = P(s' | s, a), every row summing to 1 and exits absorbing;
        ``R`` (S,) with R(s) = ``step_reward`` for non-terminal s and the exit's value (+1 / -1) for an exit;
        ``terminal`` (S,) bool, True at the exits, whose utility is fixed at R(s).
        """
        n_states, n_actions = len(STATES), len(ACTIONS)
        P = np.zeros((n_states, n_actions, n_states))
        for s in range(n_states):
            for a in range(n_actions):
                for prob, target in self.transitions(s, a):
                    P[s, a, target] += prob
        R = np.where(self.terminal, self.exit_value, self.step_reward)
        return P, R, self.terminal.copy()

    # --- gymnasium API ---------------------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[int, dict]:
        """Start at (1, 1), or at ``options["start"]`` (a cell ``(x, y)`` or a state index)."""
        super().reset(seed=seed)
        start = (options or {}).get("start", self.start)
        self._state = state_index(start) if isinstance(start, tuple | list) else int(start)
        return self._state, {"cell": STATES[self._state]}

    def step(self, action: int) -> tuple[int, float, bool, bool, dict]:
        """One move: reward r(s) of the state left, plus the exit's value when an exit is entered."""
        state = self._state
        if self.terminal[state]:  # stepping after the end: absorbing, no reward
            return state, 0.0, True, False, {"cell": STATES[state]}
        u = self.np_random.random()
        cumulative, targets = self._cumulative[state][action], self._next[state][action]
        index = 0
        while index < len(targets) - 1 and u >= cumulative[index]:
            index += 1
        self._state = next_state = targets[index]
        terminated = bool(self.terminal[next_state])
        reward = self.step_reward + (float(self.exit_value[next_state]) if terminated else 0.0)
        return next_state, reward, terminated, False, {"cell": STATES[next_state]}

    def render(self) -> str | np.ndarray | None:
        """``"ansi"``: the grid as text (``A`` agent, ``#`` wall, ``+1`` / ``-1`` exits, ``.`` empty).
        ``"rgb_array"``: an RGB image, uint8 (96, 128, 3): 32 pixels per cell, the agent a blue disc."""
        if self.render_mode is None:
            gym.logger.warn("GridWorld.render() called without a render_mode; use 'ansi' or 'rgb_array'.")
            return None
        if self.render_mode == "ansi":
            return _ansi(self._state)
        return _rgb(self._state)


# --- rendering ----------------------------------------------------------------------------------------


def format_grid(values_or_policy: Sequence[float] | Sequence[int] | np.ndarray, decimals: int = 3) -> str:
    """A text grid (top row first) of one entry per state (S,): utilities (floats, shown to ``decimals``) or a
    policy (integer action indices, shown as arrows; a negative index shows as the exit's value)."""
    values = np.asarray(values_or_policy)
    if values.shape != (len(STATES),):
        raise ValueError(f"expected one entry per state, shape ({len(STATES)},), got {values.shape}")
    is_policy = np.issubdtype(values.dtype, np.integer)
    width = 7 if not is_policy else 3
    rows = []
    for y in range(HEIGHT, 0, -1):
        entries = []
        for x in range(1, WIDTH + 1):
            if (x, y) == WALL:
                text = "#" * (width - 2 if not is_policy else 1)
            else:
                value = values[state_index((x, y))]
                if is_policy:
                    text = ARROWS[value] if value >= 0 else f"{EXITS.get((x, y), 0):+.0f}"
                else:
                    text = f"{value:.{decimals}f}"
            entries.append(text.rjust(width))
        rows.append(" ".join(entries))
    return "\n".join(rows)


def _ansi(agent: int) -> str:
    rows = []
    for y in range(HEIGHT, 0, -1):
        entries = []
        for x in range(1, WIDTH + 1):
            if (x, y) == WALL:
                text = "#"
            elif state_index((x, y)) == agent:
                text = "A"
            elif (x, y) in EXITS:
                text = f"{EXITS[(x, y)]:+.0f}"
            else:
                text = "."
            entries.append(text.rjust(2))
        rows.append(" ".join(entries))
    return "\n".join(rows) + "\n"


CELL_PIXELS = 32
_COLOURS = {"empty": (240, 240, 240), "wall": (90, 90, 90), "grid": (30, 30, 30), "agent": (40, 90, 220)}
_EXIT_COLOURS = {1.0: (80, 190, 90), -1.0: (220, 70, 60)}


def _rgb(agent: int) -> np.ndarray:
    size = CELL_PIXELS
    image = np.empty((HEIGHT * size, WIDTH * size, 3), dtype=np.uint8)
    image[:] = _COLOURS["empty"]
    for x in range(1, WIDTH + 1):
        for y in range(1, HEIGHT + 1):
            top, left = (HEIGHT - y) * size, (x - 1) * size
            block = image[top : top + size, left : left + size]
            if (x, y) == WALL:
                block[:] = _COLOURS["wall"]
            elif (x, y) in EXITS:
                block[:] = _EXIT_COLOURS[EXITS[(x, y)]]
            block[[0, -1], :] = _COLOURS["grid"]
            block[:, [0, -1]] = _COLOURS["grid"]
    x, y = STATES[agent]
    rows, cols = np.mgrid[0:size, 0:size]
    disc = (rows - size / 2 + 0.5) ** 2 + (cols - size / 2 + 0.5) ** 2 <= (size * 0.3) ** 2
    top, left = (HEIGHT - y) * size, (x - 1) * size
    image[top : top + size, left : left + size][disc] = _COLOURS["agent"]
    return image
