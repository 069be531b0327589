import torch

from latentmorph.interpolation import slerp


def test_slerp_endpoints_and_norm():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(2, 4, 8, 8, generator=g), torch.randn(2, 4, 8, 8, generator=g)
    torch.testing.assert_close(slerp(a, b, 0.0), a)
    torch.testing.assert_close(slerp(a, b, 1.0), b)
    mid = slerp(a, b, 0.5)
    # spherical interpolation of near-orthogonal gaussians keeps the norm; a lerp would shrink it
    norm = lambda x: x.flatten(1).norm(dim=1)  # noqa: E731
    ratio = norm(mid) / ((norm(a) + norm(b)) / 2)
    assert ((ratio - 1).abs() < 0.02).all()
    assert (norm((a + b) / 2) / norm(mid) < 0.8).all()


def test_slerp_per_item_fractions_and_parallel_inputs():
    a = torch.ones(2, 3)
    b = torch.ones(2, 3) * 2
    out = slerp(a, b, torch.tensor([0.0, 0.5]))
    torch.testing.assert_close(out, torch.tensor([[1.0] * 3, [1.5] * 3]))
