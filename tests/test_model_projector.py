"""Projector: NaVILA's mlp_downsample token order written out by hand, key names, shapes."""
from __future__ import annotations

import pytest
import torch

from vila_nav.model.projector import DownSampleBlock, Projector


def _grid_input(g: int) -> torch.Tensor:
    """(1, g*g, 2): token r*g + c carries (r + 1, c + 1), so zero padding is recognisable."""
    x = torch.zeros(1, g * g, 2)
    for r in range(g):
        for c in range(g):
            x[0, r * g + c] = torch.tensor([r + 1.0, c + 1.0])
    return x


def test_downsample_27x27_token_order_matches_navila():
    out = DownSampleBlock()(_grid_input(27))
    assert out.shape == (1, 196, 8)  # 27x27 -> pad to 28x28 -> 14x14 tokens of 4C

    def patch(r, c):  # value of patch (r, c); rows/columns 27 are the zero padding
        return [float(r + 1), float(c + 1)] if r < 27 and c < 27 else [0.0, 0.0]

    # Token t = j*14 + i (i row block, j column block); 4C = (2i,2j),(2i,2j+1),(2i+1,2j),(2i+1,2j+1).
    for i in range(14):
        for j in range(14):
            want = patch(2 * i, 2 * j) + patch(2 * i, 2 * j + 1) + patch(2 * i + 1, 2 * j) + patch(2 * i + 1, 2 * j + 1)
            assert out[0, j * 14 + i].tolist() == want, (i, j)
    # A few tokens spelled out literally.
    assert out[0, 0].tolist() == [1, 1, 1, 2, 2, 1, 2, 2]  # patches (0,0) (0,1) (1,0) (1,1)
    assert out[0, 1].tolist() == [3, 1, 3, 2, 4, 1, 4, 2]  # i=1, j=0: rows 2-3 of columns 0-1
    assert out[0, 14].tolist() == [1, 3, 1, 4, 2, 3, 2, 4]  # i=0, j=1: rows 0-1 of columns 2-3
    assert out[0, 195].tolist() == [27, 27, 0, 0, 0, 0, 0, 0]  # corner: only patch (26,26) is real


def test_downsample_even_grid_has_no_padding():
    out = DownSampleBlock()(_grid_input(4))
    assert out.shape == (1, 4, 8)
    assert out[0, 1].tolist() == [3, 1, 3, 2, 4, 1, 4, 2]  # i=1, j=0
    assert out[0, 2].tolist() == [1, 3, 1, 4, 2, 3, 2, 4]  # i=0, j=1
    assert (out != 0).all()


def test_downsample_rejects_non_square():
    with pytest.raises(ValueError, match="square"):
        DownSampleBlock()(torch.zeros(1, 728, 4))


@pytest.mark.parametrize(
    "ptype,keys",
    [
        ("mlp_downsample", ["layers.1.bias", "layers.1.weight", "layers.2.bias", "layers.2.weight", "layers.4.bias", "layers.4.weight"]),
        ("linear", ["layers.bias", "layers.weight"]),
        ("mlp2x_gelu", ["layers.0.bias", "layers.0.weight", "layers.2.bias", "layers.2.weight"]),
    ],
)
def test_state_dict_keys_match_vila(ptype, keys):
    proj = Projector(ptype, mm_hidden_size=6, hidden_size=10)
    assert sorted(proj.state_dict()) == keys
    out = proj(torch.randn(2, 9, 6))
    n_out = 4 if ptype == "mlp_downsample" else 9
    assert out.shape == (2, n_out, 10) and proj.num_tokens(9) == n_out
    if ptype == "mlp_downsample":
        assert proj.state_dict()["layers.1.weight"].shape == (24,)  # LayerNorm(4C)
        assert proj.state_dict()["layers.2.weight"].shape == (10, 24)  # Linear(4C -> H)
        assert proj.num_tokens(729) == 196


def test_mlp_downsample_is_block_then_layers():
    torch.manual_seed(0)
    proj = Projector("mlp_downsample", mm_hidden_size=3, hidden_size=5)
    x = torch.randn(1, 25, 3)
    l = proj.layers
    want = l[4](torch.nn.functional.gelu(l[2](l[1](DownSampleBlock()(x)))))
    assert torch.equal(proj(x), want)


def test_unknown_projector_type():
    with pytest.raises(ValueError, match="unsupported mm_projector_type"):
        Projector("mlp3x_relu", 4, 4)
