"""The hi-res stage (`blending.hires`): sizes, keyframes upscaled alike in any tree, settings."""

import numpy as np
import pytest

from latentmorph.blending.engine import BlendingEngine
from latentmorph.blending.hires import hires_size, hires_start, upscale
from latentmorph.blending.settings import BlendSettings
from latentmorph.blending.tree import TransitionTree
from latentmorph.errors import InputError


def _tree(model, **settings):
    resolved, _ = BlendSettings(width=32, height=32, hires=2, **settings).resolve(model)
    engine = BlendingEngine(model, resolved)
    conds = engine.encode(["a red circle", "a blue square"])
    (tree,) = engine.transitions(engine.begin(conds, [3, 4]), conds)
    return engine, tree, conds


def test_hires_images_have_the_scaled_size_and_the_tree_keeps_its_count(tiny_sd):
    engine, tree, conds = _tree(tiny_sd, branches=6)
    images = upscale(engine, tree, *conds, seed=3)
    assert len(images) == len(tree) == 6
    assert {i.size for i in images} == {(64, 64)}


def test_keyframes_upscale_to_the_same_image_alone_as_in_a_tree(tiny_sd):
    engine, tree, conds = _tree(tiny_sd, branches=6)
    images = upscale(engine, tree, *conds, seed=3)
    for branch, cond, image in (
        (tree.branches[0], conds[0], images[0]),
        (tree.branches[-1], conds[1], images[-1]),
    ):
        alone = TransitionTree(branch, branch, 0.0)
        alone.branches = [branch]
        (upscaled,) = upscale(engine, alone, cond, cond, seed=3)
        diff = np.abs(np.asarray(upscaled, dtype=int) - np.asarray(image, dtype=int))
        assert diff.max() <= 2


def test_settings_resolve_the_family_strength_and_record_it(tiny_sd):
    resolved, _ = BlendSettings(hires=2).resolve(tiny_sd)
    assert resolved.hires_strength == tiny_sd.defaults.hires_strength
    assert BlendSettings(**resolved.as_dict()) == resolved
    assert BlendSettings().resolve(tiny_sd)[0].hires_strength is None


@pytest.mark.parametrize(
    ("name", "value"), [("hires", 1), ("hires", 5), ("hires", "2"), ("hires_strength", 0)]
)
def test_bad_values_are_refused_in_one_line(name, value):
    with pytest.raises(InputError) as error:
        BlendSettings(**{name: value})
    assert str(error.value).startswith(f"{name}: ") and "\n" not in str(error.value)


def test_size_and_start_step():
    assert hires_size(512, 384, 2, 8) == (1024, 768)
    assert hires_size(100, 60, 1.5, 8) == (152, 88)
    assert hires_start(20, 0.4) == 12
    assert hires_start(4, 1.0) == 0 and hires_start(4, 0.01) == 3
