import numpy as np
import pytest
import torch

from latentmorph import Transition
from latentmorph.blending.engine import BlendingEngine
from latentmorph.blending.settings import BlendSettings

PROMPTS = ("a red circle on a blue background", "a yellow square on a green background")


def _render(model, **settings):
    tr = Transition(model, *PROMPTS, seeds=(420, 421), progress=False, **settings)
    return tr, tr.render()


def _arrays(images):
    return [np.asarray(i, dtype=np.int16) for i in images]


def _assert_same_images(first, second, tolerance: int = 2) -> None:
    for a, b in zip(_arrays(first), _arrays(second), strict=True):
        assert np.abs(a - b).max() <= tolerance


def test_tree_properties(any_model):
    tr, images = _render(any_model, branches=9)
    tree = tr.tree
    assert len(images) == 9
    fractions = tree.fractions
    assert fractions[0] == 0.0 and fractions[-1] == 1.0
    assert all(a < b for a, b in zip(fractions, fractions[1:]))
    for branch in tree.branches[1:-1]:
        left, right = branch.parents
        assert left.fraction < branch.fraction < right.fraction
        assert left.level < branch.level and right.level < branch.level
        assert left.start <= branch.start and right.start <= branch.start
    assert len(tree.distances) == len(images) - 1


def test_endpoints_are_the_pure_keyframe_images(tiny_sdxl):
    tr, images = _render(tiny_sdxl, branches=5)
    engine = BlendingEngine(tiny_sdxl, tr._renderer.settings)
    for prompt, seed, image in ((PROMPTS[0], 420, images[0]), (PROMPTS[1], 421, images[-1])):
        (alone,) = engine.keyframes(engine.encode([prompt]), [seed])
        assert np.abs(_arrays([alone.image])[0] - _arrays([image])[0]).max() <= 1


def test_same_seeds_give_identical_images(tiny_sd):
    _, first = _render(tiny_sd, branches=7)
    _, second = _render(tiny_sd, branches=7)
    for a, b in zip(_arrays(first), _arrays(second), strict=True):
        assert (a == b).all()


@pytest.mark.parametrize("fixture", ["tiny_sdxl", "tiny_sd"])
def test_batched_equals_one_at_a_time(request, fixture):
    model = request.getfixturevalue(fixture)
    batched, images = _render(model, branches=12, guidance_scale=3.0)
    single, alone = _render(model, branches=12, guidance_scale=3.0, batched=False)
    assert batched.tree.fractions == single.tree.fractions
    _assert_same_images(images, alone)
    stats_b, stats_s = batched._renderer.engine.stats, single._renderer.engine.stats
    assert stats_b.image_steps == stats_s.image_steps
    assert stats_b.unet_calls < stats_s.unet_calls


def test_planned_image_count_is_honoured_with_a_manual_plan(tiny_turbo):
    tr, images = _render(tiny_turbo, plan="3@s1 6@s2 10@s3")
    assert len(images) == 10
    levels = sorted({(b.level, b.start) for b in tr.tree.branches})
    assert levels == [(0, 0), (1, 1), (2, 2), (3, 3)]


def test_branches_are_injected_where_images_differ_most(tiny_sdxl):
    tr, _ = _render(tiny_sdxl, plan="3@s4 4@s5")
    tree = tr.tree
    second = next(b for b in tree.branches if b.level == 2)
    first = next(b for b in tree.branches if b.level == 1)
    assert first.fraction == 0.5
    # the level-2 branch splits whichever half of the tree was the wider one after level 1
    distance = tr._renderer.engine.distance
    left = distance(tree.branches[0].pixels[None], first.pixels[None])[0]
    right = distance(first.pixels[None], tree.branches[-1].pixels[None])[0]
    assert second.fraction == (0.25 if left >= right else 0.75)


def test_parental_crossfeed_pulls_branches_toward_their_parents(tiny_sd):
    _, free = _render(tiny_sd, plan="3@s2", parental_crossfeed=(0, 0, 0))
    _, fed = _render(tiny_sd, plan="3@s2", parental_crossfeed=(1, 1, 1))
    mid_free, mid_fed = _arrays([free[1], fed[1]])
    assert (mid_free != mid_fed).any()


def test_keyframe_crossfeed_changes_only_the_second_keyframe(tiny_sd):
    _, plain = _render(tiny_sd, branches=2)
    _, fed = _render(tiny_sd, branches=2, keyframe_crossfeed=(0.8, 0.5, 0.5))
    a, b = _arrays(plain), _arrays(fed)
    assert (a[0] == b[0]).all()
    assert np.abs(a[1] - b[1]).mean() > 1
    # pulled toward keyframe 1
    assert np.abs(b[1] - b[0]).mean() < np.abs(a[1] - a[0]).mean()


def test_guidance_is_damped_in_the_middle():
    s = BlendSettings(guidance_scale=5.0, guidance_damper=0.5)
    assert s.guidance_at(0.0) == 5.0 and s.guidance_at(1.0) == 5.0
    assert s.guidance_at(0.5) == pytest.approx(3.0)
    assert BlendSettings(guidance_scale=5.0, guidance_damper=1.0).guidance_at(0.5) == 5.0
    assert BlendSettings(guidance_scale=0.0).guidance_at(0.5) == 0.0


def test_settings_are_independent_of_the_order_they_are_given(tiny_sd):
    _, a = _render(tiny_sd, branches=3, guidance_scale=4.0, negative_prompt="dark")
    _, b = _render(tiny_sd, negative_prompt="dark", guidance_scale=4.0, branches=3)
    _, c = _render(tiny_sd, branches=3, guidance_scale=4.0)
    assert all((x == y).all() for x, y in zip(_arrays(a), _arrays(b), strict=True))
    assert any((x != z).any() for x, z in zip(_arrays(a), _arrays(c), strict=True))


def test_time_budget_plans_more_branches_for_more_time(tiny_turbo):
    small, images_small = _render(tiny_turbo, time_budget=0.05)
    large, images_large = _render(tiny_turbo, time_budget=3.0)
    assert 2 <= len(images_small) < len(images_large)
    recorded = large._renderer.recorded_project().settings
    assert recorded.time_budget is None and recorded.plan == large._renderer.plan.describe()


def test_size_is_rounded_to_the_model_multiple_with_a_notice(tiny_sd):
    settings, notices = BlendSettings(width=63, height=70).resolve(tiny_sd)
    assert (settings.width, settings.height) == (64, 70)
    assert notices == ["size 63x70 rounded to 64x70 (a multiple of 2 for this model)"]


def test_random_seeds_are_recorded(tiny_sd):
    tr = Transition(tiny_sd, *PROMPTS, branches=2, progress=False)
    tr.render()
    a, b = tr.seeds
    assert isinstance(a, int) and isinstance(b, int)
    again = Transition(tiny_sd, *PROMPTS, branches=2, seeds=(a, b), progress=False).render()
    assert all((x == y).all() for x, y in zip(_arrays(tr.tree.images), _arrays(again), strict=True))


def test_trajectories_stay_on_the_device_dtype(tiny_sdxl):
    tr, _ = _render(tiny_sdxl, branches=3)
    for branch in tr.tree.branches:
        assert all(x.dtype == torch.float32 and x.shape[0] == 1 for x in branch.latents)


def test_a_tree_fills_a_gap_with_branches_and_their_distances():
    from PIL import Image

    from latentmorph.blending.tree import Branch, TransitionTree

    def branch(f, level):
        return Branch(f, level, 0, [], Image.new("RGB", (1, 1)))

    tree = TransitionTree(branch(0.0, 0), branch(1.0, 0), 3.0)
    tree.fill(0, [branch(0.5, 1)], [3.0, 1.0])
    tree.fill(0, [branch(0.25, 2)], [2.0, 1.0])
    assert tree.fractions == [0.0, 0.25, 0.5, 1.0]
    assert tree.distances == [2.0, 1.0, 1.0]
    assert tree.parents(0, 2) == (tree.branches[0], tree.branches[2])


def test_an_even_level_adding_more_branches_than_gaps_runs_as_one_batch(tiny_sd):
    tr, images = _render(tiny_sd, plan="5@s4", placement="even")
    assert tr.tree.fractions == [0.0, 0.25, 0.5, 0.75, 1.0]
    stats = tr._renderer.engine.stats
    # the 3 branches (one level, one gap: no distances needed) join the keyframes at step 4
    assert stats.unet_calls == 8 and stats.image_steps == 2 * 8 + 3 * 4
    assert all(
        b.parents == (tr.tree.branches[0], tr.tree.branches[-1]) for b in tr.tree.branches[1:-1]
    )


def _keyframes(model, seeds, **settings):
    resolved, _ = BlendSettings(**settings).resolve(model)
    engine = BlendingEngine(model, resolved)
    prompts = [PROMPTS[i % 2] for i in range(len(seeds))]
    return engine, engine.keyframes(engine.encode(prompts), seeds)


def test_keyframe_crossfeed_runs_the_keyframes_as_one_batch(tiny_sd):
    crossfeed = (0.8, 0.6, 0.5)
    batched, together = _keyframes(tiny_sd, [1, 2, 3], keyframe_crossfeed=crossfeed)
    single, alone = _keyframes(tiny_sd, [1, 2, 3], keyframe_crossfeed=crossfeed, batched=False)
    capped, pairs = _keyframes(tiny_sd, [1, 2, 3], keyframe_crossfeed=crossfeed, max_batch=2)
    assert batched.stats.unet_calls == 8 and single.stats.unet_calls == 24
    assert capped.stats.unet_calls == 16  # keyframes 1 and 2, then 3 pulled toward 2
    for a, b, c in zip(together, alone, pairs, strict=True):
        assert np.abs(_arrays([a.image])[0] - _arrays([b.image])[0]).max() <= 1
        assert np.abs(_arrays([c.image])[0] - _arrays([b.image])[0]).max() <= 1
    # each keyframe is pulled toward the one before it, itself already pulled
    _, free = _keyframes(tiny_sd, [1, 2, 3])
    assert (_arrays([together[0].image])[0] == _arrays([free[0].image])[0]).all()
    for fed, plain in ((together[1], free[1]), (together[2], free[2])):
        assert np.abs(_arrays([fed.image])[0] - _arrays([plain.image])[0]).mean() > 1


class _BatchRecorder:
    """Wraps an adapter's denoise: records batch sizes, runs out of memory above `fits`."""

    def __init__(self, model, fits: int | None = None) -> None:
        self.denoise = model.denoise
        self.fits = fits
        self.sizes: list[int] = []

    def __call__(self, latents, *args, **kwargs):
        size = latents.shape[0]
        self.sizes.append(size)
        if self.fits is not None and size > self.fits:
            progress = args[6] if len(args) > 6 else None
            if progress is not None:
                progress(size)  # a step done before the memory ran out
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return self.denoise(latents, *args, **kwargs)


def _engine_where_memory_fits(model, monkeypatch, plan: str, fits: int):
    """An engine for `plan` whose model runs out of memory above `fits` images; with the
    batch recorder and the list of progress steps it reports."""
    recorder = _BatchRecorder(model, fits=fits)
    monkeypatch.setattr(model, "denoise", recorder)
    steps: list[int] = []
    resolved, _ = BlendSettings(plan=plan, placement="even").resolve(model)
    return BlendingEngine(model, resolved, progress=steps.append), recorder, steps


def test_max_batch_caps_the_batches_and_keeps_the_images(tiny_sd, monkeypatch):
    _, whole = _render(tiny_sd, plan="3@s2 9@s4", placement="even")
    recorder = _BatchRecorder(tiny_sd)
    monkeypatch.setattr(tiny_sd, "denoise", recorder)
    capped, images = _render(tiny_sd, plan="3@s2 9@s4", max_batch=4, placement="even")
    # keyframes to step 2, then with level 1; level 2's six branches as 4 + 2
    assert recorder.sizes == [2, 3, 4, 2]
    assert capped._renderer.engine.stats.unet_calls == 2 + 6 + 4 + 4
    _assert_same_images(whole, images)


def test_running_out_of_memory_halves_the_batch_and_goes_on(tiny_sd, monkeypatch, caplog):
    _, whole = _render(tiny_sd, plan="7@s3", placement="even")
    engine, recorder, steps = _engine_where_memory_fits(tiny_sd, monkeypatch, "7@s3", fits=2)
    conds = engine.encode(PROMPTS)
    first, last = engine.keyframes(conds, [420, 421])
    tree = engine.transition(first, last, *conds, engine.settings.branching_plan())
    assert recorder.sizes == [2, 5, 2, 2, 1]  # 5 fail; 2 + 2 + 1 succeed
    assert engine.batch_limit == 2
    assert "out of memory on cpu with 5 images in a batch; going on with at most 2" in caplog.text
    assert sum(steps) == engine.stats.image_steps == 2 * 8 + 5 * 5
    assert engine.stats.unet_calls == 8 + 3 * 5
    _assert_same_images(whole, tree.images)


def test_out_of_memory_in_the_keyframes_batch_falls_back_to_level_by_level(
    tiny_sd, monkeypatch, caplog
):
    _, whole = _render(tiny_sd, plan="4@s4", placement="even")
    engine, recorder, steps = _engine_where_memory_fits(tiny_sd, monkeypatch, "4@s4", fits=2)
    conds = engine.encode(PROMPTS)
    (tree,) = engine.transitions(engine.begin(conds, [420, 421]), conds)
    # keyframes to step 4, then 4 rows fail; keyframes alone, then the level alone
    assert recorder.sizes == [2, 4, 2, 2]
    assert "with 4 images in a batch; going on with at most 2" in caplog.text
    assert sum(steps) == engine.stats.image_steps == 2 * 8 + 2 * 4
    assert engine.stats.unet_calls == 8 + 4 and engine.stats.images == 4
    _assert_same_images(whole, tree.images)


def test_running_out_of_memory_with_one_image_is_a_one_line_error(tiny_sd, monkeypatch):
    from latentmorph.errors import DeviceMemoryError

    monkeypatch.setattr(tiny_sd, "denoise", _BatchRecorder(tiny_sd, fits=0))
    with pytest.raises(DeviceMemoryError, match=r"^out of memory on cpu with one image at 64x64;"):
        _render(tiny_sd, branches=2)


@pytest.mark.parametrize(
    "error, out_of_memory",
    [
        (torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), True),
        (RuntimeError("MPS backend out of memory (MPS allocated: 8.00 GB)"), True),
        (RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 8"), True),
        (RuntimeError("mat1 and mat2 shapes cannot be multiplied"), False),
    ],
)
def test_out_of_memory_errors_of_each_device_are_recognised(error, out_of_memory):
    from latentmorph.models.device import is_out_of_memory

    assert is_out_of_memory(error) is out_of_memory


def test_other_errors_are_not_taken_for_out_of_memory(tiny_sd, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("shape mismatch")

    monkeypatch.setattr(tiny_sd, "denoise", broken)
    with pytest.raises(RuntimeError, match="shape mismatch"):
        _render(tiny_sd, branches=2)


@pytest.mark.parametrize("value", [0, -1, 2.5, True, "4"])
def test_max_batch_must_be_a_whole_number_of_at_least_one(value):
    from latentmorph.errors import InputError

    with pytest.raises(InputError, match=rf"^max_batch: {value!r} is not allowed; use a whole"):
        BlendSettings(max_batch=value)


def test_a_prompt_longer_than_the_model_reads_is_a_note(tiny_sd, caplog):
    settings, _ = BlendSettings(branches=2).resolve(tiny_sd)
    engine = BlendingEngine(tiny_sd, settings)
    long = "a red circle " + "and a blue square " * 30
    with caplog.at_level("WARNING", logger="latentmorph"):
        engine.encode(["a red circle", long])
    notes = [r.getMessage() for r in caplog.records if r.name.startswith("latentmorph")]
    assert len(notes) == 1
    assert notes[0].startswith("prompt 2 is longer than the model reads (77 tokens); not read: ")
    assert "blue square" in notes[0]
