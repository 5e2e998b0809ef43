"""The paper's networks: parameter counts by hand, shapes for any input size, presets."""

from __future__ import annotations

import pytest
import torch

from cemsynth.errors import ConfigError
from cemsynth.models import (
    MODEL_PRESETS,
    ModelConfig,
    PatchDiscriminator,
    ResnetGenerator,
    build_cyclegan,
    build_discriminator,
    build_generator,
    count_parameters,
    get_model_preset,
    pad_to_multiple,
    receptive_field,
)

# Hand count of the paper generator (width w = 64, 1 channel, 9 residual blocks). A conv
# followed by InstanceNorm has no bias; each InstanceNorm has a scale and a shift per channel.
W = 64
ENCODE = 7 * 7 * 1 * W + 2 * W  # 3,136 + 128
DOWN_1 = 3 * 3 * W * 2 * W + 2 * 2 * W  # 73,728 + 256
DOWN_2 = 3 * 3 * 2 * W * 4 * W + 2 * 4 * W  # 294,912 + 512
RESIDUAL = 2 * (3 * 3 * 4 * W * 4 * W + 2 * 4 * W)  # 2 x (589,824 + 512) = 1,180,672
UP_1 = 3 * 3 * 4 * W * 2 * W + 2 * 2 * W  # 294,912 + 256
UP_2 = 3 * 3 * 2 * W * W + 2 * W  # 73,728 + 128
DECODE = 7 * 7 * W * 1 + 1  # 3,136 + bias 1
PAPER_GENERATOR = ENCODE + DOWN_1 + DOWN_2 + 9 * RESIDUAL + UP_1 + UP_2 + DECODE

# The paper discriminator (width 64, kernel 4): three conv + InstanceNorm blocks, one conv.
D_1 = 4 * 4 * 1 * W + 2 * W  # 1,024 + 128
D_2 = 4 * 4 * W * 2 * W + 2 * 2 * W  # 131,072 + 256
D_3 = 4 * 4 * 2 * W * 4 * W + 2 * 4 * W  # 524,288 + 512
D_SCORE = 4 * 4 * 4 * W * 1 + 1  # 4,096 + bias 1
PAPER_DISCRIMINATOR = D_1 + D_2 + D_3 + D_SCORE


def test_paper_parameter_counts_match_the_hand_count() -> None:
    assert PAPER_GENERATOR == 11_370_881
    assert PAPER_DISCRIMINATOR == 661_377
    nets = build_cyclegan(get_model_preset("paper"))
    assert count_parameters(nets.g_le_to_rc) == PAPER_GENERATOR
    assert count_parameters(nets.g_rc_to_le) == PAPER_GENERATOR
    assert count_parameters(nets.d_le) == PAPER_DISCRIMINATOR
    assert count_parameters(nets.d_rc) == PAPER_DISCRIMINATOR


def test_width_32_of_the_authors_earlier_code_quarters_the_inner_layers() -> None:
    # every 3x3 layer scales with w^2; the 7x7 in/out layers and norms scale with w
    w = 32
    count = (
        (49 * w + 2 * w)
        + (9 * w * 2 * w + 4 * w)
        + (9 * 2 * w * 4 * w + 8 * w)
        + 9 * 2 * (9 * 4 * w * 4 * w + 8 * w)
        + (9 * 4 * w * 2 * w + 4 * w)
        + (9 * 2 * w * w + 2 * w)
        + (49 * w + 1)
    )
    assert count_parameters(build_generator(ModelConfig(gen_width=32))) == count


def test_generator_layers_are_the_papers() -> None:
    generator = ResnetGenerator()
    kinds = [type(m).__name__ for m in generator.encode]
    assert kinds == ["ReflectionPad2d", "Conv2d", "InstanceNorm2d", "ReLU"]
    strides = [m.stride for m in generator.down if isinstance(m, torch.nn.Conv2d)]
    assert strides == [(2, 2), (2, 2)]
    assert len(generator.residual) == 9
    ups = [m for m in generator.up if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [m.stride for m in ups] == [(2, 2), (2, 2)]
    assert isinstance(generator.decode[-1], torch.nn.Tanh)


@pytest.mark.parametrize("shape", [(37, 53), (129, 127), (5, 3), (1, 1), (64, 130)])
def test_generator_output_shape_equals_input_shape(shape: tuple[int, int]) -> None:
    torch.manual_seed(0)
    generator = build_generator(get_model_preset("small"))
    x = torch.rand(2, 1, *shape) * 2 - 1
    y = generator(x)
    assert y.shape == x.shape
    assert y.dtype == torch.float32
    assert y.abs().max() < 1.0  # tanh


def test_paper_generator_odd_size() -> None:
    generator = build_generator(get_model_preset("paper"))
    with torch.no_grad():
        assert generator(torch.zeros(1, 1, 33, 47)).shape == (1, 1, 33, 47)


def test_padding_leaves_multiples_of_four_alone_and_mirrors_otherwise() -> None:
    x = torch.arange(12.0).reshape(1, 1, 3, 4)
    assert pad_to_multiple(torch.zeros(1, 1, 128, 128)).shape == (1, 1, 128, 128)
    padded = pad_to_multiple(torch.zeros(1, 1, 37, 53))
    assert padded.shape == (1, 1, 40, 56)
    # 3 x 4 -> 8 x 8: the pad (5 rows) exceeds the side, so edge pixels are repeated
    small = pad_to_multiple(x)
    assert small.shape == (1, 1, 8, 8)
    assert torch.equal(small[0, 0, 7, :4], x[0, 0, 2])
    # 9 x 9 -> 12 x 12 by reflection: row 9 mirrors row 7 (no repeated edge row)
    y = torch.arange(81.0).reshape(1, 1, 9, 9)
    assert torch.equal(pad_to_multiple(y)[0, 0, 9, :9], y[0, 0, 7])


def test_discriminator_layers_and_patch_output() -> None:
    discriminator = PatchDiscriminator()
    kinds = [type(m).__name__ for m in discriminator.layers]
    assert kinds == [
        *(["Conv2d", "InstanceNorm2d", "LeakyReLU"] * 3),
        "Conv2d",
        "Sigmoid",
    ]
    small = build_discriminator(get_model_preset("small"))
    scores = small(torch.zeros(3, 1, 128, 128))
    assert scores.shape == (3, 1, 15, 15)
    assert scores.min() > 0 and scores.max() < 1
    # 4 -> 10 -> 22 -> 46 walking back through the stride-1 and three stride-2 layers
    assert receptive_field(4) == 46


def test_presets_and_unknown_name() -> None:
    assert get_model_preset("paper") == ModelConfig()
    small = get_model_preset("small")
    assert (small.gen_width, small.gen_residual_blocks) == (16, 3)
    with pytest.raises(ConfigError, match="valid presets: paper, small, unet"):
        get_model_preset("huge")
    assert set(MODEL_PRESETS) == {"paper", "small", "unet"}


def test_model_config_round_trip_and_unknown_keys() -> None:
    config = ModelConfig(gen_width=32)
    assert ModelConfig.from_dict(config.to_dict()) == config
    with pytest.raises(
        ConfigError, match=r"unknown model config key 'ngf'.*valid keys: version, channels"
    ):
        ModelConfig.from_dict({"ngf": 64})
    with pytest.raises(ConfigError, match="newer"):
        ModelConfig.from_dict({"version": 99})
    with pytest.raises(ConfigError, match="gen_width"):
        ModelConfig(gen_width=0)


def test_seeded_builds_are_identical() -> None:
    torch.manual_seed(3)
    a = build_cyclegan(get_model_preset("small"))
    torch.manual_seed(3)
    b = build_cyclegan(get_model_preset("small"))
    for (name, p), (_, q) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(p, q), name


# --- the U-Net of the "unet" preset ---------------------------------------------------------


def _unet_hand_count(w: int, levels: int) -> int:
    """Conv 3x3 with bias: 9 * i * o + o. Widths w, 2w, 4w, 8w, 8w, ..."""
    widths = [w * 2 ** min(i, 3) for i in range(levels + 1)]

    def conv(i: int, o: int, k: int = 3) -> int:
        return k * k * i * o + o

    encode = conv(1, widths[0]) + conv(widths[0], widths[0])
    encode += sum(conv(widths[i], widths[i + 1]) + conv(widths[i + 1], widths[i + 1])
                  for i in range(levels))  # fmt: skip
    upsample = sum(conv(widths[i + 1], widths[i]) for i in range(levels))
    decode = sum(conv(2 * widths[i], widths[i]) + conv(widths[i], widths[i]) for i in range(levels))
    return encode + upsample + decode + conv(widths[0], 1, k=1)


def test_unet_parameter_count_matches_the_hand_count() -> None:
    unet = build_generator(MODEL_PRESETS["unet"])
    assert count_parameters(unet) == _unet_hand_count(16, 4) == 1_420_881
    narrow = ModelConfig(generator="unet", gen_width=8, unet_levels=2)
    assert count_parameters(build_generator(narrow)) == _unet_hand_count(8, 2)


@pytest.mark.parametrize("shape", [(1, 1), (37, 53), (128, 128), (130, 97)])
def test_unet_output_shape_equals_input_shape(shape: tuple[int, int]) -> None:
    torch.manual_seed(0)
    unet = build_generator(ModelConfig(generator="unet", gen_width=4, unet_levels=3)).eval()
    x = torch.rand(2, 1, *shape) * 2 - 1
    with torch.no_grad():
        y = unet(x)
    assert y.shape == x.shape and torch.isfinite(y).all()


def test_unet_output_does_not_depend_on_the_window_it_is_cut_from() -> None:
    """Without normalisation a pixel's output depends only on its neighbourhood: two windows
    offset by 32 pixels (a multiple of 2**levels) agree on their overlap away from the window
    borders. The paper's InstanceNorm generator does not (its statistics are per window): the
    source of window seams."""
    torch.manual_seed(0)
    image = torch.rand(1, 1, 192, 192) * 2 - 1
    image[..., :, 100:] -= 0.8  # windows that see different amounts of 'air'
    unet = build_generator(ModelConfig(generator="unet", gen_width=4, unet_levels=3)).eval()
    resnet = build_generator(ModelConfig(gen_width=4, gen_residual_blocks=1)).eval()
    with torch.no_grad():
        for network, agrees in ((unet, True), (resnet, False)):
            a = network(image[..., 0:128, 0:128])[..., 48:80, 64:96]
            b = network(image[..., 0:128, 32:160])[..., 48:80, 32:64]
            assert torch.allclose(a, b, atol=1e-5) is agrees


def test_unknown_generator_kind_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"model\.generator must be one of resnet, unet"):
        ModelConfig(generator="vit")
