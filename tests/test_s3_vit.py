"""3.4-vit: the course ViT's size from a hand count, SDPA against the
course's einsum attention on the same weights, the course model's state dict
loading unchanged, learning on 2,000 real MNIST digits, resume."""

from __future__ import annotations

import json

import pytest
import torch

from labbench.engine.events import iter_events
from labbench.engine.params import ParamsInvalid, validate_params
from labbench.exercises.s3_vit import (Attention, ViT, ViTParams, attention_rollout, course_attention, forward_flops,
                                       parse_arch)

from .helpers import run_exercise
from .stopping import after_step, run_stopped


def course_vit(**kw) -> ViT:
    return ViT(image_size=28, patch_size=7, num_classes=10, channels=1, **kw)


def test_course_model_has_213642_parameters_by_hand():
    dim, depth, mlp, n_tokens, patch_dim = 64, 6, 128, 17, 49
    pos_embedding = n_tokens * dim                       # 1,088
    patch_to_embedding = patch_dim * dim + dim           # 3,200
    cls_token = dim                                      # 64
    per_block = (2 * dim                                 # LayerNorm before the attention
                 + dim * 3 * dim                         # to_qkv, no bias: 12,288
                 + dim * dim + dim                       # to_out: 4,160
                 + 2 * dim                               # LayerNorm before the MLP
                 + dim * mlp + mlp + mlp * dim + dim)    # MLP: 8,320 + 8,256
    head = dim * mlp + mlp + mlp * 10 + 10               # 9,610
    hand = pos_embedding + patch_to_embedding + cls_token + depth * per_block + head
    assert per_block == 33_280 and hand == 213_642
    model = course_vit(dim=64, depth=6, heads=8, mlp_dim=128)
    assert sum(p.numel() for p in model.parameters()) == hand
    assert model(torch.zeros(3, 1, 28, 28)).shape == (3, 10)


def test_flops_by_hand():
    # one block of the course model, multiply-adds: qkv 17*64*192, scores and A V 2*17*17*64,
    # out 17*64*64, MLP 2*17*64*128
    block = 17 * 64 * 192 + 2 * 17 * 17 * 64 + 17 * 64 * 64 + 2 * 17 * 64 * 128
    macs = 16 * 49 * 64 + 6 * block + 64 * 128 + 128 * 10
    assert forward_flops(64, 6, 8, 128) == 2 * macs == 7_247_872


@pytest.mark.parametrize("scale", ["course", "head"])
def test_sdpa_equals_the_course_einsum_on_the_same_weights(scale):
    torch.manual_seed(0)
    attn = Attention(64, heads=8, scale=scale, impl="sdpa")
    x = torch.randn(5, 17, 64)
    q, k, v = attn.split(x)
    ref, weights = course_attention(q, k, v, attn.scale)
    ref = attn.to_out(ref.transpose(1, 2).reshape(5, 17, 64))
    assert attn.scale == pytest.approx(64 ** -0.5 if scale == "course" else 8 ** -0.5)
    torch.testing.assert_close(attn(x), ref, atol=1e-6, rtol=1e-5)
    attn.impl = "math"
    torch.testing.assert_close(attn(x), ref, atol=1e-6, rtol=1e-5)
    assert torch.allclose(weights.sum(-1), torch.ones(5, 8, 17))
    # the class token alone (the last block's shortcut) gives the class token's row
    torch.testing.assert_close(attn(x, cls_only=True), ref[:, :1], atol=1e-6, rtol=1e-5)


def test_bf16_autocast_on_the_cpu_keeps_the_attention_core_in_fp32(monkeypatch):
    import labbench.exercises.s3_vit as vit

    seen = []
    core = vit._math_attention
    monkeypatch.setattr(vit, "_math_attention", lambda q, k, v, s: seen.append(q.dtype) or core(q, k, v, s))
    torch.manual_seed(0)
    attn = Attention(64, heads=8, impl="math")
    x = torch.randn(4, 17, 64)
    ref = attn(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = attn(x)
    assert seen == [torch.float32, torch.float32]  # the CPU's bf16 softmax is the slow one
    assert out.dtype == torch.bfloat16  # to_out ran in bf16
    torch.testing.assert_close(out.float(), ref, atol=0.05, rtol=0.05)


def _course_reference(model: ViT, img: torch.Tensor) -> torch.Tensor:
    """The notebook's forward pass, written with its einsum attention and the
    einops patterns as reshapes, on the model's own weights."""
    b, p = img.shape[0], model.patch_size
    x = img.reshape(b, 1, 4, p, 4, p).permute(0, 2, 4, 3, 5, 1).reshape(b, 16, p * p)  # b c (h p1) (w p2) -> ...
    x = model.patch_to_embedding(x)
    x = torch.cat((model.cls_token.expand(b, -1, -1), x), dim=1)
    x += model.pos_embedding
    for res_attn, res_ff in model.transformer.layers:
        attn = res_attn.fn.fn
        h_in = res_attn.fn.norm(x)
        qkv = attn.to_qkv(h_in)
        q, k, v = qkv.reshape(b, 17, 3, attn.heads, -1).permute(2, 0, 3, 1, 4)  # b n (qkv h d) -> qkv b h n d
        dots = torch.einsum("bhid,bhjd->bhij", q, k) * attn.scale
        out = torch.einsum("bhij,bhjd->bhid", dots.softmax(dim=-1), v)
        out = out.permute(0, 2, 1, 3).reshape(b, 17, -1)                          # b h n d -> b n (h d)
        x = attn.to_out(out) + x
        x = res_ff(x)
    return model.mlp_head(x[:, 0])


@pytest.mark.parametrize("impl", ["sdpa", "math"])
def test_whole_model_equals_the_course_forward(impl):
    torch.manual_seed(1)
    model = course_vit(dim=32, depth=3, heads=4, mlp_dim=48, attention=impl).eval()
    img = torch.rand(6, 1, 28, 28)
    with torch.no_grad():
        ref = _course_reference(model, img)
        torch.testing.assert_close(model(img), ref, atol=1e-5, rtol=1e-5)
        model.cls_only = False  # every token through the last block: the class token's logits do not change
        torch.testing.assert_close(model(img), ref, atol=1e-5, rtol=1e-5)
    # the state dict keeps the notebook's names
    keys = set(model.state_dict())
    assert {"pos_embedding", "cls_token", "patch_to_embedding.weight", "transformer.layers.0.0.fn.fn.to_qkv.weight",
            "transformer.layers.0.0.fn.norm.weight", "transformer.layers.2.1.fn.fn.net.2.bias",
            "mlp_head.0.weight"} <= keys


def test_patches_are_row_major_7x7_blocks():
    model = course_vit(dim=8, depth=1, heads=1, mlp_dim=8)
    img = torch.arange(28 * 28, dtype=torch.float32).reshape(1, 1, 28, 28)
    patches = model.patches(img)
    assert patches.shape == (1, 16, 49)
    assert torch.equal(patches[0, 0], img[0, 0, :7, :7].reshape(49))
    assert torch.equal(patches[0, 1], img[0, 0, :7, 7:14].reshape(49))   # second patch: to the right
    assert torch.equal(patches[0, 4], img[0, 0, 7:14, :7].reshape(49))   # fifth: the next row of patches


def test_rollout_of_uniform_attention_is_uniform_and_rows_sum_to_one():
    n = 17
    maps = [torch.full((2, 4, n, n), 1 / n) for _ in range(3)]
    r = attention_rollout(maps)
    assert torch.allclose(r.sum(-1), torch.ones(2, n))
    # 0.5 I + 0.5 U applied three times: the diagonal keeps 1/8 + (1 - 1/8)/n
    assert r[0, 0, 0].item() == pytest.approx(1 / 8 + (7 / 8) / n)
    assert r[0, 0, 5].item() == pytest.approx((7 / 8) / n)


def test_arch_sets_the_four_sizes_and_bad_values_are_refused():
    p = ViTParams(arch="128/8/16/256")
    assert (p.dim, p.depth, p.heads, p.mlp_dim) == (128, 8, 16, 256)
    again = validate_params(ViTParams, json.loads(p.model_dump_json()))  # a saved run's params read back
    assert (again.dim, again.heads) == (128, 16)
    assert parse_arch(" 32 / 4/4/64") == (32, 4, 4, 64)
    for bad, words in [({"arch": "64/6/8"}, "dim/depth/heads/mlp_dim"), ({"arch": "64/6/7/128"}, "7 heads"),
                       ({"arch": "128/8/16/256", "dim": 32}, "either arch"),
                       ({"heads": 5}, "5 heads do not divide dim 64"), ({"patch_size": 5}, "does not tile"),
                       ({"map_layer": 7}, "block 7 does not exist")]:
        with pytest.raises(ParamsInvalid) as err:
            validate_params(ViTParams, bad)
        assert words in str(err.value), str(err.value)


def test_course_schedule_is_the_default():
    p = ViTParams()
    assert (p.lr_schedule, p.lr_gamma, p.lr, p.batch_size, p.epochs) == ("exponential", 0.95, 1e-3, 128, 20)


def test_one_epoch_on_2000_digits_beats_chance(shared_data, tmp_path):
    # a small ViT with the standard scaling learns fastest in 125 steps: 0.56 here (seeds 1-3: 0.58, 0.59, 0.40)
    result, events = run_exercise("3.4-vit", tmp_path, epochs=1, train_limit=2000, test_limit=1000, batch_size=16,
                                  lr=2e-3, scale="head", dim=32, depth=2, heads=4, mlp_dim=64, cpu_threads=1,
                                  show_digits=2)
    assert result.status == "ok", result.summary.get("message")
    m = result.summary["metrics"]
    assert m["val_acc"] >= 0.30, m  # chance is 0.10
    assert m["params"] == sum(p.numel() for p in course_vit(dim=32, depth=2, heads=4, mlp_dim=64).parameters())
    scalars = [e["values"] for e in events if e["type"] == "scalars"]
    assert {"loss/train", "loss/test", "acc/test", "lr", "time/epoch_s"} <= set(scalars[-1])
    assert scalars[-1]["lr"] == pytest.approx(2e-3)  # the LR the epoch ran with (the decay comes after it)
    heads = next(e for e in events if e["type"] == "images" and e["name"] == "heads")
    assert heads["shape"] == [2 * 4, 28, 28, 3] and heads["ncols"] == 4
    roll = [e for e in events if e["type"] == "images" and e["name"] == "rollout"]
    assert roll and roll[-1]["shape"] == [4, 28, 28, 3]


TINY = dict(train_limit=256, test_limit=64, batch_size=64, dim=16, depth=1, heads=2, mlp_dim=16, cpu_threads=1,
            show_digits=0)


def test_stopped_after_two_epochs_then_resumed_equals_three_straight(shared_data, tmp_path):
    from labbench.engine.runner import resume

    straight, _ = run_exercise("3.4-vit", tmp_path / "straight", epochs=3, **TINY)
    part, _ = run_stopped("3.4-vit", tmp_path, after_step("acc/test", 2), epochs=3, checkpoint_every=1, **TINY)
    assert straight.status == "ok" and part.status == "interrupted"
    m = part.summary["metrics"]
    assert m["epochs_done"] == 2 and 0 <= m["val_acc"] <= 1  # a stopped run still reports its accuracy
    done = resume(tmp_path / "3.4-vit-stopped")
    assert done.status == "ok"
    a, b = straight.summary["metrics"], done.summary["metrics"]
    assert b["epochs_done"] == 3
    assert b["test_loss"] == pytest.approx(a["test_loss"], rel=1e-5)
    assert b["val_acc"] == pytest.approx(a["val_acc"])
    lrs = [e["values"]["lr"] for e in iter_events(tmp_path / "3.4-vit-stopped") if e["type"] == "scalars"]
    assert lrs == pytest.approx([1e-3, 0.95e-3, 0.95 ** 2 * 1e-3])  # the schedule went on where it stopped
