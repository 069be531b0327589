import pytest

from latentmorph.blending.plan import BranchingPlan, Level, plan_for_budget, quality_settings
from latentmorph.errors import InputError


@pytest.mark.parametrize("steps", [1, 4, 8, 30, 100])
@pytest.mark.parametrize("branches", [2, 3, 5, 12, 37, 100])
@pytest.mark.parametrize("depth", [0.0, 0.3, 0.5, 1.0])
def test_auto_plan_honours_count_and_orders_levels(steps, branches, depth):
    plan = BranchingPlan.auto(steps, branches, depth)
    assert plan.branches == branches
    starts = [level.start for level in plan.levels]
    totals = [level.total for level in plan.levels]
    assert starts == sorted(set(starts))
    assert all(0 <= s < steps for s in starts)
    assert totals == sorted(set(totals)) and (not totals or totals[0] > 2)
    if plan.levels:
        assert starts[0] == min(steps - 1, round(steps * depth))


def test_auto_plan_example():
    plan = BranchingPlan.auto(8, 12, 0.5)
    assert plan.levels == (Level(4, 4), Level(5, 7), Level(6, 12))
    assert plan.describe() == "4@s4 7@s5 12@s6"
    # keyframes 2×8, then 2 branches × 4 steps, 3 × 3, 5 × 2
    assert plan.branch_steps() == 16 + 8 + 9 + 10


def test_manual_plan_from_strengths_and_steps():
    a = BranchingPlan.manual(30, [4, 8, 20], strengths=[0.3, 0.5, 0.9])
    assert a.levels == (Level(9, 4), Level(15, 8), Level(27, 20))
    b = BranchingPlan.manual(30, [4, 8, 20], starts=[9, 15, 27])
    assert a == b
    assert BranchingPlan.parse("4@0.3, 8@0.5 20@s27", 30) == a


@pytest.mark.parametrize(
    "text, message",
    [
        ("4@0.5 3@0.6", "strictly increase"),
        ("4@0.5 8@0.4", "strictly increase"),
        ("2@0.5", "first count must exceed 2"),
        ("4@1.5", "plan: injection strength 1.5 in '4@1.5' is not allowed"),
        ("4@s30", "injection step 30 is not allowed; use 0 to 29"),
        ("four@0.5", "'four@0.5' is not allowed"),
        ("", "empty"),
    ],
)
def test_plan_errors_name_the_problem(text, message):
    with pytest.raises(InputError, match=message):
        BranchingPlan.parse(text, 30)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(steps=0, branches=5, depth_strength=0.5), "steps: 0"),
        (dict(steps=10, branches=1, depth_strength=0.5), "branches: 1"),
        (dict(steps=10, branches=5, depth_strength=1.2), "depth_strength: 1.2"),
        (dict(steps=10, branches=5, depth_strength=-0.1), "depth_strength: -0.1"),
    ],
)
def test_auto_plan_rejects_bad_input(kwargs, message):
    with pytest.raises(InputError, match=message):
        BranchingPlan.auto(**kwargs)


def test_quality_presets():
    assert quality_settings("lowest", 100) == (12, 5)
    assert quality_settings("low", 160) == (15, 10)
    assert quality_settings("medium", 300) == (30, 37)
    assert quality_settings("high", 100) == (60, 25)
    assert quality_settings("ultra", 100) == (100, 50)
    assert quality_settings("low", 20) == (15, 3)
    with pytest.raises(InputError, match="quality: 'best'"):
        quality_settings("best", 100)


def test_budget_plan_grows_with_budget_and_fits():
    small = plan_for_budget(4, 0.5, 1.0, step_seconds=0.05, image_seconds=0.05)
    large = plan_for_budget(4, 0.5, 10.0, step_seconds=0.05, image_seconds=0.05)
    assert 2 < small.branches < large.branches
    for plan, budget in ((small, 1.0), (large, 10.0)):
        cost = (plan.branch_steps() - 8) * 0.05 + (plan.branches - 2) * 0.05
        assert cost <= budget
    assert plan_for_budget(4, 0.5, 0.01, 0.05, 0.05).branches == 2
