"""Branch placement: where a level's new branches go between the branches a tree already has.

The engine grows a level in rounds: each round it asks the placement for the fractions to add
to every tree, computes them all in one batch, measures the new distances, and asks again until
the level is full. A placement only decides fractions; batching is the engine's business.

A placement is a function `(fractions, distances, count) -> picks`: the tree's fractions in
order, the distance of each gap between neighbours and how many branches the level still
needs; picks are (gap, new fractions) pairs, the gap being the index of its left branch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..checks import check_choice
from ..choices import PLACEMENTS

# adaptive: a round refines every gap at least this share of the largest one
ADAPTIVE_SHARE = 0.7
Picks = list[tuple[int, list[float]]]
Placement = Callable[[Sequence[float], Sequence[float], int], Picks]


def allocate(distances: Sequence[float], count: int) -> list[tuple[int, int]]:
    """Where `count` new branches go: (gap, how many) pairs. Each branch goes to the gap whose
    pieces would still differ most (distance / (branches already given + 1)); ties go to the
    earlier gap."""
    given = [0] * len(distances)
    for _ in range(count):
        gap = max(range(len(given)), key=lambda i: (distances[i] / (given[i] + 1), -i))
        given[gap] += 1
    return [(gap, n) for gap, n in enumerate(given) if n]


def even(fractions: Sequence[float], distances: Sequence[float], count: int) -> Picks:
    """All `count` branches in one round, allocated to the gaps by distance and spread evenly
    inside each gap."""
    return [(gap, _spread(fractions, gap, n)) for gap, n in allocate(distances, count)]


def sequential(fractions: Sequence[float], distances: Sequence[float], count: int) -> Picks:
    """One branch a round, at the midpoint of the gap that differs most (latentblending's way)."""
    gap = max(range(len(distances)), key=lambda i: (distances[i], -i))
    return [(gap, _spread(fractions, gap, 1))]


def adaptive(fractions: Sequence[float], distances: Sequence[float], count: int) -> Picks:
    """Each round bisects every gap that differs nearly as much as the largest one (at least
    `ADAPTIVE_SHARE` of it), one branch per gap: like `sequential`, the largest change is
    refined first and measured again, but gaps of similar size are refined in one batch."""
    largest = max(distances)
    gaps = [i for i, d in enumerate(distances) if d >= ADAPTIVE_SHARE * largest]
    gaps = sorted(gaps, key=lambda i: (-distances[i], i))[:count]
    return [(gap, _spread(fractions, gap, 1)) for gap in sorted(gaps)]


PLACEMENT_POLICIES: dict[str, Placement] = {
    "adaptive": adaptive,
    "even": even,
    "sequential": sequential,
}


def get_placement(name: str) -> Placement:
    """The placement named `name` (one of `PLACEMENTS`)."""
    check_choice("placement", name, PLACEMENTS)
    return PLACEMENT_POLICIES[name]


def _spread(fractions: Sequence[float], gap: int, count: int) -> list[float]:
    a, b = fractions[gap], fractions[gap + 1]
    return [a + (b - a) * i / (count + 1) for i in range(1, count + 1)]
