"""Session 3.4 - a Vision Transformer on MNIST.

Course notebook: session3/attention.ipynb, "Transformers": "Build ViT from
scratch" (Residual, PreNorm, FeedForward, Attention with a fused qkv
projection and einops, Transformer, ViT), "Training and test function"
(log-softmax + NLL, the test set evaluated after every epoch) and "Let's
start training!" (dim 64, depth 6, heads 8, mlp_dim 128; Adam 1e-3,
ExponentialLR 0.95, batch 128, 20 epochs). The report's Table 5 varies the
architecture.

The modules keep the course's names and nesting, so a state dict of the
notebook's model loads here unchanged. How it is made fast: MNIST is one
tensor on the device and batches are index slices (no DataLoader, no
per-image ToTensor), losses are summed on the device and read once per
epoch; the attention goes through ``scaled_dot_product_attention`` (fused
kernels on a GPU; on the CPU, where those kernels are slower for 8-wide
heads over 17 tokens, the same formula is written out); the last block
computes only the class token, the one output the head reads.
"""

from __future__ import annotations

import re
import time
from typing import Literal, Optional

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from pydantic import Field, ValidationInfo, field_validator, model_validator

from ..data import mnist
from ..engine import Exercise, Run
from ..nn import (DeepParams, LossMeter, ScheduleParams, batch_indices, compile_model, count_parameters, cpu_threads,
                  evaluate, make_generator, make_schedule, precision, schedule_kwargs)
from ..nn.params import ScheduleKind
from ..render.overlay import heat_overlay

DESCRIPTION = """
A **Vision Transformer** (ViT) classifies MNIST digits from 7 x 7 patches:

    28 x 28 digit -> 16 patches of 49 pixels -> Linear(49, dim) each
    + a learned class token, + a learned positional embedding (1, 17, dim)
    depth x [ x + Attention(LayerNorm(x)) ;  x + MLP(LayerNorm(x)) ]
    class token -> Linear(dim, mlp_dim) - GELU - Linear(mlp_dim, 10)

The attention is multi-head: one fused projection `to_qkv = Linear(dim,
3 dim)` gives the queries, keys and values, each cut into the heads (dim /
heads channels per head), and `to_out = Linear(dim, dim)` mixes the heads'
outputs; the MLP is Linear(dim, mlp_dim) - GELU - Linear(mlp_dim, dim). Training as the course
does it: log-softmax + NLL loss, Adam (lr 1e-3), the learning rate times 0.95
after every epoch, batch 128, 20 epochs on the 60,000 training digits, the
10,000 test digits evaluated after each epoch. The course model (dim 64,
depth 6, 8 heads, mlp_dim 128) has **213,642** parameters.

**Scaling**: the course multiplies the scores by `dim ** -0.5`, the model
width (1/8 for dim 64), not by the head width `(dim / heads) ** -0.5` of the
standard Transformer (1/sqrt(8) here): its scores are sqrt(heads) times
smaller, so its attention starts out flatter, and the network has to grow its
query and key weights to sharpen it. `scale = "course"` (default) keeps the
course's factor, `scale = "head"` uses the standard one.

Shown: train loss, test loss and test accuracy per epoch, the learning rate,
seconds per epoch, the parameter count, and what the class token looks at on
a few test digits, drawn over the digit (bright yellow: high attention):
each head's attention from the class token to the 16 patches in one block
(`map_layer`, default the last), and the **attention rollout** (Abnar and
Zuidema): the head-averaged attention of every block, plus the identity for
the residual path, multiplied through the blocks.

Report Table 5 (dim/depth/heads/mlp_dim; validation accuracy after 20
epochs; seconds on a Colab T4):

| dim/depth/heads/mlp_dim | val acc (report) | seconds (report) |
|---|---|---|
| 64/6/8/128 | 98.43% (report) | 293.6 (report) |
| 128/8/16/256 | 98.67% (report) | 332.6 (report) |
| 32/4/4/64 | 97.87% (report) | 250.8 (report) |
| 64/12/8/128 | 98.62% (report) | 421.2 (report) |
| 128/6/4/128 | 98.48% (report) | 298.2 (report) |
| 64/6/8/256 | 98.39% (report) | 297.4 (report) |

The preset `3.4-vit-report-table5` runs all six as one sweep (`arch` sets
the four sizes at once); its table lists the validation accuracy (the
course's "validation" set is the MNIST test set), the seconds and the
parameter count of each.

Questions: which of the four sizes buys the most accuracy per parameter and
per second? Do the heads of the last block look at different parts of the
digit? Does the standard scaling change the result after 20 epochs?
"""

#: report Table 5: dim/depth/heads/mlp_dim -> (validation accuracy, seconds on Colab)
TABLE5 = {
    "64/6/8/128": (0.9843, 293.6),
    "128/8/16/256": (0.9867, 332.6),
    "32/4/4/64": (0.9787, 250.8),
    "64/12/8/128": (0.9862, 421.2),
    "128/6/4/128": (0.9848, 298.2),
    "64/6/8/256": (0.9839, 297.4),
}
IMAGE_SIZE = 28
ARCH = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*/\s*(\d+)\s*/\s*(\d+)\s*$")
ARCH_FIELDS = ("dim", "depth", "heads", "mlp_dim")


def parse_arch(text: str) -> tuple[int, int, int, int]:
    """"64/6/8/128" -> (dim, depth, heads, mlp_dim); ValueError says what is wrong."""
    m = ARCH.match(str(text))
    if not m:
        raise ValueError(f'"{text}" is not dim/depth/heads/mlp_dim (four whole numbers, e.g. "64/6/8/128")')
    dim, depth, heads, mlp_dim = (int(g) for g in m.groups())
    if min(dim, depth, heads, mlp_dim) < 1:
        raise ValueError(f'"{text}": every size must be at least 1')
    if dim % heads:
        raise ValueError(f'"{text}": {heads} heads do not divide dim {dim}')
    return dim, depth, heads, mlp_dim


class ViTParams(DeepParams, ScheduleParams):
    epochs: int = Field(20, ge=1, le=1000, description="Epochs (course: 20)")
    batch_size: int = Field(128, ge=1, le=60_000, description="Mini-batch size (course: 128)")
    lr: float = Field(1e-3, gt=0, description="Adam learning rate (course: 0.001)")
    dim: int = Field(64, ge=1, le=4096, description="Token width (course: 64)")
    depth: int = Field(6, ge=1, le=64, description="Transformer blocks (course: 6)")
    heads: int = Field(8, ge=1, le=256, description="Attention heads; must divide dim (course: 8)")
    mlp_dim: int = Field(128, ge=1, le=16384, description="Hidden width of the MLPs and the head (course: 128)")
    arch: Optional[str] = Field(None, description='dim/depth/heads/mlp_dim in one value, e.g. "128/8/16/256" '
                                                  "(report Table 5); sets the four sizes")
    patch_size: int = Field(7, ge=1, le=28, description="Patch side in pixels; must divide 28 (course: 7)")
    scale: Literal["course", "head"] = Field(
        "course", description="Score scaling: course = dim ** -0.5 (model width), head = (dim/heads) ** -0.5 "
                              "(the standard Transformer)")
    attention: Literal["auto", "sdpa", "math"] = Field(
        "auto", description="sdpa = torch's scaled_dot_product_attention; math = softmax(q k^T * scale) v written "
                            "out; auto = sdpa on CUDA, math on the CPU (faster there for these small heads)")
    cpu_threads: Optional[int] = Field(None, ge=1, le=256, description="CPU threads for a CPU run (unset: torch's "
                                                                       "default; 1 is best on a busy machine)")
    show_digits: int = Field(4, ge=0, le=16, description="Test digits whose attention maps are drawn")
    map_layer: Optional[int] = Field(None, ge=1, description="Block whose per-head attention is drawn "
                                                             "(unset: the last)")
    # the course's schedule: ExponentialLR(gamma=0.95), stepped after every epoch
    lr_schedule: ScheduleKind = Field("exponential", description="LR schedule (course: exponential, x lr_gamma "
                                                                 "per epoch); none, step, cosine, onecycle")
    lr_gamma: float = Field(0.95, gt=0, le=1, description="LR factor per epoch (exponential; course: 0.95) "
                                                          "or per drop (step)")
    # precision, compile, channels_last (no effect: no convolutions), train_limit, test_limit,
    # checkpoint_every: DeepParams

    @field_validator("heads")
    @classmethod
    def _heads_divide_dim(cls, v, info: ValidationInfo):
        dim = (info.data or {}).get("dim")
        if isinstance(dim, int) and dim % v:
            raise ValueError(f"{v} heads do not divide dim {dim} (each head gets dim / heads channels)")
        return v

    @field_validator("arch")
    @classmethod
    def _arch(cls, v, info: ValidationInfo):
        if v is None:
            return v
        sizes = parse_arch(v)
        data = info.data or {}
        for name, value in zip(ARCH_FIELDS, sizes):
            given = data.get(name)
            default = cls.model_fields[name].default
            if given is not None and given not in (default, value):
                raise ValueError(f'"{v}" sets {name} = {value}, but {name} is also set to {given}: '
                                 f"give either arch or dim/depth/heads/mlp_dim")
        return "/".join(str(s) for s in sizes)

    @field_validator("patch_size")
    @classmethod
    def _patch_divides_image(cls, v):
        if IMAGE_SIZE % v:
            raise ValueError(f"a {v}-pixel patch does not tile a 28 x 28 digit (use 1, 2, 4, 7, 14 or 28)")
        return v

    @field_validator("map_layer")
    @classmethod
    def _layer_exists(cls, v, info: ValidationInfo):
        data = info.data or {}
        depth = parse_arch(data["arch"])[1] if data.get("arch") else data.get("depth")
        if v is not None and isinstance(depth, int) and v > depth:
            raise ValueError(f"block {v} does not exist in a {depth}-block model (1 to {depth})")
        return v

    @model_validator(mode="after")
    def _apply_arch(self):
        if self.arch is not None:
            for name, value in zip(ARCH_FIELDS, parse_arch(self.arch)):
                object.__setattr__(self, name, value)
        return self


# ----------------------------------------------------------------------- model
class Residual(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x, **kwargs):
        return self.fn(x, **kwargs) + x


class PreNorm(nn.Module):
    def __init__(self, dim, fn):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fn = fn

    def forward(self, x, **kwargs):
        return self.fn(self.norm(x), **kwargs)


class FeedForward(nn.Module):
    def __init__(self, dim, hidden_dim):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden_dim), nn.GELU(), nn.Linear(hidden_dim, dim))

    def forward(self, x):
        return self.net(x)


def course_attention(q, k, v, scale: float):
    """The notebook's formulation: einsum scores, softmax, einsum with the
    values. Returns (output, attention weights); q, k, v are (b, h, n, d)."""
    dots = torch.einsum("bhid,bhjd->bhij", q, k) * scale
    attn = dots.softmax(dim=-1)
    return torch.einsum("bhij,bhjd->bhid", attn, v), attn


class Attention(nn.Module):
    """Multi-head self-attention with the course's fused ``to_qkv`` projection.

    ``scale``: "course" multiplies the scores by ``dim ** -0.5`` as the notebook
    does, "head" by ``(dim / heads) ** -0.5``. ``impl``: "sdpa" or "math"."""

    def __init__(self, dim, heads=8, scale: str = "course", impl: str = "sdpa"):
        super().__init__()
        self.heads = heads
        self.scale = dim ** -0.5 if scale == "course" else (dim // heads) ** -0.5
        self.impl = impl
        self.to_qkv = nn.Linear(dim, dim * 3, bias=False)
        self.to_out = nn.Linear(dim, dim)

    def split(self, x):
        """q, k, v of shape (b, h, n, d): the einops pattern
        'b n (qkv h d) -> qkv b h n d' as a view and a permutation."""
        b, n, dim = x.shape
        return self.to_qkv(x).view(b, n, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4).unbind(0)

    def forward(self, x, cls_only: bool = False):
        b, n, dim = x.shape
        q, k, v = self.split(x)
        if cls_only:  # only the class token's output is needed (the last block)
            q = q[:, :, :1]
        if self.impl == "sdpa":
            out = F.scaled_dot_product_attention(q, k, v, scale=self.scale)
        elif x.device.type == "cpu" and _cpu_autocast():
            with torch.autocast("cpu", enabled=False):  # the CPU's bf16 softmax is slower than fp32's
                out = _math_attention(q.float(), k.float(), v.float(), self.scale)
        else:
            out = _math_attention(q, k, v, self.scale)
        out = out.transpose(1, 2).reshape(b, q.shape[2], dim)  # 'b h n d -> b n (h d)'
        return self.to_out(out)

    @torch.no_grad()
    def weights(self, x):
        """The attention weights (b, h, n, n) of the course's formulation."""
        q, k, v = self.split(x)
        return course_attention(q, k, v, self.scale)[1]


def _cpu_autocast() -> bool:
    try:
        return torch.is_autocast_enabled("cpu")
    except TypeError:  # torch before 2.4
        return torch.is_autocast_cpu_enabled()


def _math_attention(q, k, v, scale: float):
    """softmax(q k^T * scale) v on contiguous (b*h, n, d) blocks."""
    b, h, m, d = q.shape
    n = k.shape[2]
    q, k, v = q.reshape(b * h, m, d), k.reshape(b * h, n, d), v.reshape(b * h, n, d)
    attn = torch.softmax(torch.bmm(q, k.transpose(1, 2)) * scale, dim=-1)
    return torch.bmm(attn, v).view(b, h, m, v.shape[-1])


class Transformer(nn.Module):
    def __init__(self, dim, depth, heads, mlp_dim, scale: str = "course", impl: str = "sdpa"):
        super().__init__()
        self.layers = nn.ModuleList([])
        for _ in range(depth):
            self.layers.append(nn.ModuleList([
                Residual(PreNorm(dim, Attention(dim, heads=heads, scale=scale, impl=impl))),
                Residual(PreNorm(dim, FeedForward(dim, mlp_dim))),
            ]))

    def forward(self, x, cls_only: bool = False):
        """All tokens through every block; with ``cls_only`` the last block
        computes the class token alone (the same numbers for it, less work)."""
        last = len(self.layers) - 1
        for i, (attn, ff) in enumerate(self.layers):
            if cls_only and i == last:
                x = attn.fn(x, cls_only=True) + x[:, :1]
            else:
                x = attn(x)
            x = ff(x)
        return x


class ViT(nn.Module):
    def __init__(self, *, image_size, patch_size, num_classes, dim, depth, heads, mlp_dim, channels=3,
                 scale: str = "course", attention: str = "sdpa"):
        super().__init__()
        if image_size % patch_size:
            raise ValueError("image dimensions must be divisible by the patch size")
        num_patches = (image_size // patch_size) ** 2
        patch_dim = channels * patch_size ** 2
        self.patch_size = patch_size
        self.pos_embedding = nn.Parameter(torch.randn(1, num_patches + 1, dim))
        self.patch_to_embedding = nn.Linear(patch_dim, dim)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim))
        self.transformer = Transformer(dim, depth, heads, mlp_dim, scale=scale, impl=attention)
        self.to_cls_token = nn.Identity()
        self.mlp_head = nn.Sequential(nn.Linear(dim, mlp_dim), nn.GELU(), nn.Linear(mlp_dim, num_classes))
        self.cls_only = True  # the last block computes the class token only

    def patches(self, img):
        """'b c (h p1) (w p2) -> b (h w) (p1 p2 c)': one row of pixels per patch."""
        b, c, hh, ww = img.shape
        p = self.patch_size
        x = img.reshape(b, c, hh // p, p, ww // p, p).permute(0, 2, 4, 3, 5, 1)
        return x.reshape(b, (hh // p) * (ww // p), p * p * c)

    def embed(self, img):
        x = self.patch_to_embedding(self.patches(img))
        cls_tokens = self.cls_token.expand(img.shape[0], -1, -1)
        return torch.cat((cls_tokens, x), dim=1) + self.pos_embedding

    def forward(self, img):
        x = self.transformer(self.embed(img), cls_only=self.cls_only)
        return self.mlp_head(self.to_cls_token(x[:, 0]))

    @torch.no_grad()
    def attention_maps(self, img) -> list[torch.Tensor]:
        """The attention weights (b, heads, n, n) of every block, in fp32."""
        x = self.embed(img.float())
        maps = []
        for attn, ff in self.transformer.layers:
            maps.append(attn.fn.fn.weights(attn.fn.norm(x)))
            x = ff(attn(x))
        return maps


def attention_rollout(maps: list[torch.Tensor]) -> torch.Tensor:
    """Attention rollout (Abnar and Zuidema, 2020): per block the heads'
    mean plus the identity (the residual path), rows renormalised, multiplied
    from the first block to the last. Returns (b, n, n): row 0 is how much of
    each token reaches the class token."""
    n = maps[0].shape[-1]
    eye = torch.eye(n, device=maps[0].device, dtype=maps[0].dtype)
    rollout = eye.expand(maps[0].shape[0], n, n)
    for a in maps:
        a = 0.5 * a.mean(dim=1) + 0.5 * eye
        a = a / a.sum(dim=-1, keepdim=True)
        rollout = a @ rollout
    return rollout


def forward_flops(dim: int, depth: int, heads: int, mlp_dim: int, patch_size: int = 7, channels: int = 1,
                  num_classes: int = 10, image_size: int = IMAGE_SIZE) -> int:
    """Floating-point operations (2 per multiply-add, matrix products only) of
    one image through the course's model, every token in every block."""
    n_patches = (image_size // patch_size) ** 2
    n = n_patches + 1
    block = n * dim * 3 * dim + 2 * n * n * dim + n * dim * dim + 2 * n * dim * mlp_dim
    macs = n_patches * channels * patch_size ** 2 * dim + depth * block + dim * mlp_dim + mlp_dim * num_classes
    return 2 * macs


def nll(output, target, reduction: str = "mean"):
    """The course's loss: log-softmax, then the negative log-likelihood."""
    return F.nll_loss(F.log_softmax(output.float(), dim=1), target, reduction=reduction)


def attention_impl(p: ViTParams, device: torch.device) -> str:
    if p.attention != "auto":
        return p.attention
    return "sdpa" if device.type == "cuda" else "math"


def show_attention(run: Run, model: ViT, digits: torch.Tensor, labels: torch.Tensor, p: ViTParams,
                   step: int | None, heads: bool) -> None:
    """The class token's attention drawn over the digits: the rollout over
    all blocks (every epoch), and each head of one block (at the end)."""
    was = model.training
    model.eval()
    maps = model.attention_maps(digits)
    pred = model(digits.float()).argmax(1).cpu()
    model.train(was)
    side = IMAGE_SIZE // p.patch_size
    grey = digits[:, 0].float().cpu()
    k = len(grey)
    roll = attention_rollout(maps)[:, 0, 1:].reshape(k, side, side).cpu()
    over = heat_overlay(grey, roll)
    plain = (grey.clamp(0, 1).numpy()[..., None].repeat(3, axis=-1) * 255 + 0.5).astype(np.uint8)
    run.images("rollout", np.concatenate([plain, over]), step=step, ncols=k,
               title="test digits, and the attention rollout to the class token (yellow: most)",
               captions=[f"{int(t)} -> {int(q)}" for t, q in zip(labels.cpu(), pred)] + ["rollout"] * k,
               highlight=[i for i in range(k) if int(pred[i]) != int(labels[i])])
    if heads:
        layer = (p.map_layer or p.depth) - 1
        a = maps[layer][:, :, 0, 1:].reshape(k * p.heads, side, side).cpu()  # class token -> patches, per head
        over = heat_overlay(grey.repeat_interleave(p.heads, dim=0), a)
        run.images("heads", over, ncols=p.heads,
                   title=f"class-token attention of each head in block {layer + 1} (one digit a row)",
                   captions=[f"{int(labels[i])} h{j + 1}" for i in range(k) for j in range(p.heads)])


# ------------------------------------------------------------------------ run
def run(p: ViTParams, run: Run) -> None:
    dev = run.device or torch.device("cpu")
    with cpu_threads(p.cpu_threads, dev):
        train(p, run, dev)


def train(p: ViTParams, run: Run, dev: torch.device) -> None:
    prec = precision(p.precision, dev)

    # --- data: pixels / 255 as ToTensor gives them, one tensor on the device
    x, y = mnist.tensors("mnist", "train", device=dev, limit=p.train_limit)
    x_test, y_test = mnist.tensors("mnist", "test", device=dev, limit=p.test_limit)
    run.text(f"MNIST: {len(x)} train, {len(x_test)} test images on {dev}")

    # --- model
    impl = attention_impl(p, dev)
    model = ViT(image_size=IMAGE_SIZE, patch_size=p.patch_size, num_classes=10, channels=1, dim=p.dim,
                depth=p.depth, heads=p.heads, mlp_dim=p.mlp_dim, scale=p.scale, attention=impl).to(dev)
    n_params = count_parameters(model)
    flops = forward_flops(p.dim, p.depth, p.heads, p.mlp_dim, p.patch_size)
    opt = torch.optim.Adam(model.parameters(), lr=p.lr)
    n_batches = -(-len(x) // p.batch_size)
    sched = make_schedule(p.lr_schedule, opt, epochs=p.epochs, steps_per_epoch=n_batches, **schedule_kwargs(p))
    # auto compiles long CUDA runs; a GPU does this model at very roughly 30,000 images/s
    net = compile_model(model, p.compile, device=dev, expected_s=p.epochs * len(x) / 30_000, log=run.text)
    run.text(f"ViT {p.dim}/{p.depth}/{p.heads}/{p.mlp_dim} (dim/depth/heads/mlp_dim), patch {p.patch_size}: "
             f"{n_params:,} trainable parameters, {flops / 1e6:.2f} MFLOP per image forward; scores x "
             f"{model.transformer.layers[0][0].fn.fn.scale:.4g} ({p.scale}); attention: {impl}; {prec.describe()}")
    k = min(p.show_digits, len(x_test))
    digits, digit_labels = x_test[:k], y_test[:k]

    # --- loop (the course's train_epoch + evaluate; resumable)
    gen = make_generator(run.seed)
    meter = LossMeter()
    state = run.resumable(models=model, optimizers=opt, schedulers=sched, scaler=prec.scaler,
                          generators={"shuffle": gen}, extra={"time_s": 0.0, "images": 0, "epochs_timed": 0},
                          every=p.checkpoint_every)
    test_loss = test_acc = None
    for epoch in run.epochs(p.epochs):
        t0 = time.perf_counter()
        lr = sched.lr
        model.train()
        for idx in run.batches(batch_indices(len(x), p.batch_size, generator=gen, device=dev)):
            with prec.autocast():
                loss = nll(net(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            prec.minimize(loss, opt)
            sched.after_batch()
            meter.add(len(idx), train=loss)
        test_loss, test_acc, _ = evaluate(model, x_test, y_test, loss_fn=nll, precision=prec, forward=net)
        sched.after_epoch()
        values = {**meter.means(prefix="loss/"), "loss/test": test_loss, "acc/test": test_acc}
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        seconds = time.perf_counter() - t0
        state["time_s"] += seconds
        state["images"] += len(x)
        state["epochs_timed"] += 1
        run.scalars(epoch, values, lr=lr, **{"time/epoch_s": seconds}, check=["loss/train"])
        if k:
            show_attention(run, model, digits, digit_labels, p, step=epoch, heads=False)

    # --- results (also after a Stop: the model in hand)
    if test_acc is None:
        test_loss, test_acc, _ = evaluate(model, x_test, y_test, loss_fn=nll, precision=prec, forward=net)
    test_loss, test_acc = float(test_loss), float(test_acc)
    if k:
        show_attention(run, model, digits, digit_labels, p, step=None, heads=True)
    arch = f"{p.dim}/{p.depth}/{p.heads}/{p.mlp_dim}"
    if arch in TABLE5 and p.patch_size == 7:
        acc_r, s_r = TABLE5[arch]
        run.table("table5", ["", "val acc", "seconds", "epochs"],
                  [["report Table 5 (Colab T4)", acc_r, s_r, 20],
                   ["this run", test_acc, round(state["time_s"], 1), run.step or 0]],
                  title=f"{arch} against the report's Table 5",
                  note="val acc: the MNIST test set after the last epoch (the course calls it validation); seconds: "
                       "training and the evaluation after each epoch, as the notebook's execution time")
    # the report's columns first (a sweep table shows the first few): accuracy, seconds, size
    metrics = {"val_acc": test_acc, "time_s": round(state["time_s"], 2), "params": n_params,
               "test_loss": test_loss, "epochs_done": run.step or 0}
    if state["epochs_timed"]:
        metrics["s_per_epoch"] = state["time_s"] / state["epochs_timed"]
        metrics["images_per_s"] = state["images"] / max(state["time_s"], 1e-9)
    run.summary(**metrics)


EXERCISE = Exercise(
    id="3.4-vit",
    title="A Vision Transformer on MNIST",
    session=3,
    description=DESCRIPTION,
    Params=ViTParams,
    run=run,
    data=["mnist"],
    primary_metric="val_acc",
)
