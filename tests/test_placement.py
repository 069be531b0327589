"""Branch placement policies: where each round of a level puts its branches."""

import pytest

from latentmorph.blending.engine import BlendingEngine
from latentmorph.blending.placement import adaptive, allocate, even, get_placement, sequential
from latentmorph.blending.settings import BlendSettings
from latentmorph.errors import InputError

PROMPTS = ["a red circle", "a blue square"]
FRACTIONS = [0.0, 0.25, 0.5, 1.0]


def test_allocation_gives_branches_to_the_gaps_that_differ_most():
    assert allocate([3.0, 1.0], 3) == [(0, 3)]  # 3/3 ties 1/1: the earlier gap
    assert allocate([3.0, 1.0], 4) == [(0, 3), (1, 1)]
    assert allocate([2.0, 1.5], 2) == [(0, 1), (1, 1)]


def test_even_places_the_whole_level_at_once_spread_inside_each_gap():
    assert even(FRACTIONS, [1.0, 1.0, 4.0], 3) == [(2, [0.625, 0.75, 0.875])]
    assert even(FRACTIONS, [1.0, 2.0, 2.0], 2) == [(1, [0.375]), (2, [0.75])]


def test_sequential_bisects_the_gap_that_differs_most_one_branch_a_round():
    assert sequential(FRACTIONS, [1.0, 3.0, 2.0], 5) == [(1, [0.375])]
    assert sequential(FRACTIONS, [2.0, 1.0, 2.0], 5) == [(0, [0.125])]  # ties: earlier


def test_adaptive_bisects_every_gap_close_to_the_largest_in_one_round():
    assert adaptive(FRACTIONS, [0.6, 1.0, 0.75], 5) == [(1, [0.375]), (2, [0.75])]
    assert adaptive(FRACTIONS, [0.7, 1.0, 0.7], 5) == [(0, [0.125]), (1, [0.375]), (2, [0.75])]
    # a sudden change alone is refined alone; never more branches than the level needs
    assert adaptive(FRACTIONS, [0.1, 5.0, 0.2], 5) == [(1, [0.375])]
    assert adaptive(FRACTIONS, [1.0, 1.0, 1.0], 2) == [(0, [0.125]), (1, [0.375])]


def test_an_unknown_placement_is_a_one_line_error():
    with pytest.raises(InputError, match=r"^placement: 'random' is not allowed; use one of "):
        get_placement("random")
    with pytest.raises(InputError, match=r"^placement: "):
        BlendSettings(placement="middle")


@pytest.mark.parametrize("name", ["sequential", "adaptive", "even"])
def test_each_round_is_what_the_placement_picks_from_the_distances_measured_so_far(
    tiny_sd, monkeypatch, name
):
    settings, _ = BlendSettings(plan="3@s2 9@s4", placement=name, distance="pixel").resolve(tiny_sd)
    engine = BlendingEngine(tiny_sd, settings)
    rounds = []
    grow_round = engine._grow_round

    def record(trees, conds, picks, level_no, start):
        (tree,) = trees
        expected = get_placement(name)(tree.fractions, tree.distances, 9 - len(tree))
        rounds.append((picks[0], expected))
        grow_round(trees, conds, picks, level_no, start)

    monkeypatch.setattr(engine, "_grow_round", record)
    conds = engine.encode(PROMPTS)
    (tree,) = engine.transitions(engine.begin(conds, [1, 2]), conds)
    assert len(tree) == 9
    assert all(picks == expected for picks, expected in rounds)
    later = [picks for picks, _ in rounds]
    if name == "sequential":
        assert all(len(fractions) == 1 for _, fractions in (p[0] for p in later))
        assert len(later) == 6
    elif name == "even":
        assert len(later) == 1
    # every later-level branch is computed once, from step 4 on
    assert engine.stats.image_steps == 2 * 8 + 1 * 6 + 6 * 4
    assert engine.stats.unet_calls == 8 + 4 * len(later)
