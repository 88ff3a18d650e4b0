"""Level-0 V-JEPA model: shapes, positions before the gather, EMA, the loss, optimiser groups, FLOP count."""

import math

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from worldmodel.models import VideoEncoder, VideoPredictor, get_preset
from worldmodel.models.jepa import VJEPA, stats_to_floats
from worldmodel.models.masks import VJEPA_SPECS, MultiBlockMaskCollator, apply_masks
from worldmodel.models.vit import TubeletEmbed, sincos_3d
from worldmodel.training.flops import mask_sizes, measure_matmul_peak, vjepa_train_flops_per_clip

torch.set_num_threads(1)

# a narrow tiny model on 32 px clips: 4 x 4 x 4 = 64 tokens, fast on one core
SMALL_TINY = dict(image_size=32, width=64, depth=2, heads=4, pred_width=32, pred_depth=2, pred_heads=4)


def _batch(cfg, batch_size=4, start=0, seed=0):
    gen = torch.Generator().manual_seed(start)
    items = [{"clip": torch.randn(cfg.channels, cfg.frames, cfg.image_size, cfg.image_size, generator=gen),
              "position": start + i} for i in range(batch_size)]
    return MultiBlockMaskCollator(cfg.grid, VJEPA_SPECS, seed=seed)(items)


def test_unknown_preset_error_lists_known_names():
    with pytest.raises(ValueError, match="known presets: tiny, small, base, large"):
        get_preset("huge")


def test_tiny_preset_is_the_cpu_default_grid():
    cfg = get_preset("tiny")
    assert (cfg.image_size, cfg.frames, cfg.tubelet, cfg.patch) == (64, 8, 2, 8)
    assert cfg.grid == (4, 8, 8) and cfg.num_tokens == 256


def test_tiny_forward_backward_shapes():
    torch.manual_seed(0)
    cfg = get_preset("tiny")
    model = VJEPA(cfg)
    batch = _batch(cfg, batch_size=2)
    full = model.encoder(batch["clips"])
    assert full.shape == (2, 256, cfg.width)
    keep = batch["masks_enc"][0]
    context = model.encoder(batch["clips"], keep=keep)
    assert context.shape == (2, keep.shape[1], cfg.width)
    pred = model.predictor(context, keep, batch["masks_pred"][0], mask_type=0)
    assert pred.shape == (2, batch["masks_pred"][0].shape[1], cfg.width)
    loss, stats = model(batch)
    loss.backward()
    assert loss.ndim == 0 and math.isfinite(loss.item())
    assert all(p.grad is not None for p in model.encoder.parameters())
    assert all(p.grad is not None for p in model.predictor.parameters())
    assert all(p.grad is None for p in model.target_encoder.parameters())
    # measured stats stay on the device until read, all together, when logging
    assert all(torch.is_tensor(stats[k]) for k in ("loss_mask0", "target_std", "encoder_std"))
    floats = stats_to_floats(stats)
    for key in ("loss_mask0", "loss_mask1", "target_std", "encoder_std", "encoder_token_std",
                "masked_fraction0", "masked_fraction1", "context_fraction0", "context_fraction1"):
        assert isinstance(floats[key], float) and math.isfinite(floats[key])
    assert floats["loss_mask0"] == pytest.approx(float(stats["loss_mask0"]))


@pytest.mark.parametrize("name", ["small", "base"])
def test_vit_sized_presets_forward_backward_on_small_clips(name):
    torch.manual_seed(0)
    cfg = get_preset(name, image_size=32, frames=4)  # 2 x 2 x 2 tokens, real widths and depths
    encoder, predictor = VideoEncoder(cfg), VideoPredictor(cfg)
    clips = torch.randn(1, 3, 4, 32, 32)
    keep, targets = torch.tensor([[0, 3, 5]]), torch.tensor([[1, 2, 4, 6, 7]])
    out = predictor(encoder(clips, keep=keep), keep, targets, mask_type=1)
    assert out.shape == (1, 5, cfg.width)
    out.abs().mean().backward()
    assert encoder.patch_embed.proj.weight.grad is not None


def test_large_preset_is_vit_l_on_the_meta_device():
    cfg = get_preset("large")
    assert (cfg.width, cfg.depth, cfg.heads, cfg.patch, cfg.image_size, cfg.frames) == (1024, 24, 16, 16, 224, 16)
    assert (cfg.pred_width, cfg.pred_depth) == (384, 12)
    with torch.device("meta"):
        encoder, predictor = VideoEncoder(cfg), VideoPredictor(cfg)
        clips = torch.empty(2, 3, 16, 224, 224)
    keep = torch.zeros(2, 300, dtype=torch.long, device="meta")
    targets = torch.zeros(2, 1268, dtype=torch.long, device="meta")
    assert encoder(clips).shape == (2, 1568, 1024)
    context = encoder(clips, keep=keep)
    assert context.shape == (2, 300, 1024)
    assert predictor(context, keep, targets).shape == (2, 1268, 1024)
    params = sum(p.numel() for p in encoder.parameters())
    assert 300e6 <= params <= 306e6  # ViT-L/16 with a tubelet embedding: ~303M


def test_tubelet_embedding_as_a_matrix_product_equals_its_conv3d():
    torch.manual_seed(0)
    embed = TubeletEmbed(channels=3, width=16, tubelet=2, patch=4)
    clips = torch.randn(2, 3, 4, 8, 12)
    conv = embed.proj(clips).flatten(2).transpose(1, 2)  # (B, t*h*w, D) in (t h w) order
    out = embed(clips)
    assert out.shape == (2, 2 * 2 * 3, 16)
    torch.testing.assert_close(out, conv, rtol=1e-5, atol=1e-5)
    out.sum().backward()
    assert embed.proj.weight.grad is not None and embed.proj.bias.grad is not None


def test_sincos_positions_use_separate_time_height_width_bands():
    pos = sincos_3d(96, (4, 8, 8)).view(4, 8, 8, 96)  # 32 channels per axis
    assert torch.allclose(pos[1, :, :, :32], pos[1, :1, :1, :32].expand(8, 8, 32))  # time band: t only
    assert torch.allclose(pos[:, 3, :, 32:64], pos[:1, 3, :1, 32:64].expand(4, 8, 32))  # height band: h only
    assert torch.allclose(pos[:, :, 5, 64:], pos[:1, :1, 5, 64:].expand(4, 8, 32))  # width band: w only
    assert not torch.allclose(pos[0, 0, 0], pos[1, 0, 0])


def test_encoder_adds_positions_before_dropping_tokens():
    torch.manual_seed(0)
    cfg = get_preset("tiny", **SMALL_TINY)
    encoder = VideoEncoder(cfg).eval()
    clips = torch.randn(2, 3, cfg.frames, 32, 32)
    keep = torch.stack([torch.randperm(cfg.num_tokens)[:10] for _ in range(2)])
    seen = {}

    def record(module, args):
        seen["x"] = args[0]

    hook = encoder.blocks[0].register_forward_pre_hook(record)
    encoder(clips, keep=keep)
    hook.remove()
    assert torch.equal(seen["x"], apply_masks(encoder.embed(clips), keep))
    # attention is permutation-equivariant: keeping every token in any order permutes the full output
    perm = torch.stack([torch.randperm(cfg.num_tokens) for _ in range(2)])
    assert torch.allclose(encoder(clips, keep=perm), apply_masks(encoder(clips), perm), atol=1e-5)


def test_predictor_mask_tokens_start_at_zero_and_are_indexed_by_mask_type():
    cfg = get_preset("tiny", **SMALL_TINY)
    predictor = VideoPredictor(cfg, num_mask_types=2)
    assert predictor.mask_tokens.shape == (2, 1, 1, cfg.pred_width) and not predictor.mask_tokens.any()
    with pytest.raises(ValueError, match="mask_type 2"):
        predictor(torch.randn(1, 3, cfg.width), torch.tensor([[0, 1, 2]]), torch.tensor([[3]]), mask_type=2)


def test_residual_projections_are_rescaled_by_depth():
    torch.manual_seed(0)
    cfg = get_preset("tiny", image_size=32, width=256, depth=8, heads=4)
    blocks = VideoEncoder(cfg).blocks
    std_first, std_last = blocks[0].mlp.fc2.weight.std().item(), blocks[7].mlp.fc2.weight.std().item()
    assert std_first / std_last == pytest.approx(math.sqrt(8), rel=0.05)
    assert blocks[0].mlp.fc1.weight.std().item() == pytest.approx(0.02, rel=0.05)  # trunc_normal(0.02), cut at +-2


def test_ema_update_moves_target_toward_online_by_the_formula():
    torch.manual_seed(0)
    model = VJEPA(get_preset("tiny", **SMALL_TINY))
    with torch.no_grad():
        for p in model.encoder.parameters():
            p.add_(torch.randn_like(p))
    online = [p.detach().clone() for p in model.encoder.parameters()]
    before = [p.detach().clone() for p in model.target_encoder.parameters()]
    model.ema_update(0.9)
    for q, k0, k1 in zip(online, before, model.target_encoder.parameters()):
        assert torch.allclose(k1, 0.9 * k0 + 0.1 * q, atol=1e-6)
        assert not k1.requires_grad
    model.ema_update(0.0)
    assert all(torch.equal(q, k) for q, k in zip(online, model.target_encoder.parameters()))


def test_loss_decreases_on_a_fixed_batch():
    torch.manual_seed(0)
    cfg = get_preset("tiny", **SMALL_TINY)
    model = VJEPA(cfg)
    batch = _batch(cfg, batch_size=4)
    optimizer = torch.optim.AdamW(model.param_groups(0.04), lr=1e-3)
    losses = []
    for _ in range(20):
        loss, _ = model(batch)
        assert math.isfinite(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        model.ema_update(0.99)
        losses.append(loss.item())
    assert sum(losses[-3:]) / 3 < 0.8 * sum(losses[:3]) / 3


def test_loss_embeds_the_clips_once_and_equals_encoding_each_mask_type_from_the_clips():
    torch.manual_seed(0)
    cfg = get_preset("tiny", **SMALL_TINY)
    model = VJEPA(cfg)
    batch = _batch(cfg, batch_size=3)
    calls = []
    model.encoder.patch_embed.register_forward_hook(lambda *_: calls.append(1))
    loss, _ = model(batch)
    assert len(calls) == 1
    loss.backward()
    grads = {name: p.grad.clone() for name, p in model.encoder.named_parameters()}
    model.zero_grad()
    with torch.no_grad():
        targets = model.target_encoder(batch["clips"])
        targets = torch.nn.functional.layer_norm(targets, targets.shape[-1:])
    reference = torch.stack([
        (model.predictor(model.encoder(batch["clips"], keep=enc), enc, pred, mask_type=i)
         - apply_masks(targets, pred)).abs().mean()
        for i, (enc, pred) in enumerate(zip(batch["masks_enc"], batch["masks_pred"]))]).mean()
    reference.backward()
    torch.testing.assert_close(loss, reference)
    for name, p in model.encoder.named_parameters():
        torch.testing.assert_close(grads[name], p.grad, rtol=1e-4, atol=1e-6, msg=name)


def test_param_groups_cover_trainable_parameters_once_and_skip_decay_for_biases_and_norms():
    model = VJEPA(get_preset("tiny", **SMALL_TINY))
    decay, no_decay = model.param_groups(0.05)
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0 and no_decay["no_decay"]
    ids = [id(p) for g in (decay, no_decay) for p in g["params"]]
    trainable = [id(p) for p in model.parameters() if p.requires_grad]
    assert sorted(ids) == sorted(trainable) and len(set(ids)) == len(ids)
    assert all(p.ndim >= 2 for p in decay["params"]) and all(p.ndim == 1 for p in no_decay["params"])
    assert id(model.encoder.norm.weight) in map(id, no_decay["params"])
    assert not any(id(p) in ids for p in model.target_encoder.parameters())


def test_analytic_flops_match_the_flop_counter():
    torch.manual_seed(0)
    cfg = get_preset("tiny", **SMALL_TINY)
    model = VJEPA(cfg)
    batch = _batch(cfg, batch_size=3)
    # the math backend decomposes attention into matmuls the counter sees (the fused CPU kernel is not counted)
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        loss, _ = model(batch)
        loss.backward()
    sizes = ([m.shape[1] for m in batch["masks_enc"]], [m.shape[1] for m in batch["masks_pred"]])
    analytic = vjepa_train_flops_per_clip(cfg, *sizes)
    assert analytic == pytest.approx(counter.get_total_flops() / 3, rel=0.02)


def test_mask_sizes_and_flops_per_clip_of_the_tiny_preset():
    cfg = get_preset("tiny")
    context, target = mask_sizes(MultiBlockMaskCollator(cfg.grid, VJEPA_SPECS).counts)
    assert all(1 <= c + t <= cfg.num_tokens for c, t in zip(context, target))
    flops = vjepa_train_flops_per_clip(cfg, context, target)
    assert 1e9 < flops < 2e10


def test_measure_matmul_peak_returns_a_positive_rate():
    peak = measure_matmul_peak(size=128, seconds=0.05)
    assert math.isfinite(peak) and peak > 1e6
