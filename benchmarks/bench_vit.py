"""Benchmark: one epoch of the 3.4-vit ViT (64/6/8/128) on the CPU, two ways,
in one process, from the same initial weights.

1. labbench: MNIST decoded once into one tensor, index-slice batches, the
   loss summed on the device, the last block computing the class token only,
   attention written out as bmm + softmax (``attention = "auto"`` on the CPU);
   fp32, and bf16 autocast (``precision = "bf16"``) where the CPU has bf16
   instructions;
2. the course notebook's loop: torchvision's ``MNIST`` with ``ToTensor()``
   behind a shuffled ``DataLoader`` (batch 128), einops ``rearrange`` (the
   equivalent reshapes when einops is not installed: ``pip install
   labbench[bench]``), einsum attention, ``log_softmax`` + ``nll_loss``,
   ``loss.item()`` every 100 training batches and after every test batch.

An epoch is what the course's loop does per epoch: train on the training
images, then evaluate on the test images (by default 10,000 training images
and the first 1,667 test images, the course's 6:1 ratio). Prints seconds,
CPU seconds (less sensitive to a busy machine) and the time ratio labbench /
course (target 0.4), then the report's Table 5 as a calculation of the time
an H100 would need (marked as such; no GPU is measured here).

    .venv/bin/python benchmarks/bench_vit.py                   # 10,000 images
    .venv/bin/python benchmarks/bench_vit.py --images 2000 --threads 1
"""

from __future__ import annotations

import argparse
import gzip
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from labbench.data import DataError, mnist  # noqa: E402
from labbench.exercises.s3_vit import TABLE5, ViT, forward_flops, nll, parse_arch  # noqa: E402
from labbench.nn import LossMeter, batch_indices, evaluate, make_generator, precision  # noqa: E402

try:
    from einops import rearrange
except ImportError:  # the same patterns as reshapes and permutations
    rearrange = None


# ------------------------------------------------------------- the course's model
def _split_qkv(qkv, h):
    if rearrange is not None:
        return rearrange(qkv, "b n (qkv h d) -> qkv b h n d", qkv=3, h=h)
    b, n, _ = qkv.shape
    return qkv.reshape(b, n, 3, h, -1).permute(2, 0, 3, 1, 4)


def _merge_heads(out):
    if rearrange is not None:
        return rearrange(out, "b h n d -> b n (h d)")
    b, h, n, d = out.shape
    return out.permute(0, 2, 1, 3).reshape(b, n, h * d)


def _patches(img, p):
    if rearrange is not None:
        return rearrange(img, "b c (h p1) (w p2) -> b (h w) (p1 p2 c)", p1=p, p2=p)
    b, c, hh, ww = img.shape
    return img.reshape(b, c, hh // p, p, ww // p, p).permute(0, 2, 4, 3, 5, 1).reshape(b, -1, p * p * c)


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


class CourseAttention(nn.Module):
    def __init__(self, dim, heads=8):
        super().__init__()
        self.heads = heads
        self.scale = dim ** -0.5
        self.to_qkv = nn.Linear(dim, dim * 3, bias=False)
        self.to_out = nn.Linear(dim, dim)

    def forward(self, x, mask=None):
        q, k, v = _split_qkv(self.to_qkv(x), self.heads)
        dots = torch.einsum("bhid,bhjd->bhij", q, k) * self.scale
        attn = dots.softmax(dim=-1)
        out = torch.einsum("bhij,bhjd->bhid", attn, v)
        return self.to_out(_merge_heads(out))


class CourseTransformer(nn.Module):
    def __init__(self, dim, depth, heads, mlp_dim):
        super().__init__()
        self.layers = nn.ModuleList([nn.ModuleList([Residual(PreNorm(dim, CourseAttention(dim, heads=heads))),
                                                    Residual(PreNorm(dim, FeedForward(dim, mlp_dim)))])
                                     for _ in range(depth)])

    def forward(self, x, mask=None):
        for attn, ff in self.layers:
            x = attn(x, mask=mask)
            x = ff(x)
        return x


class CourseViT(nn.Module):
    def __init__(self, *, image_size, patch_size, num_classes, dim, depth, heads, mlp_dim, channels=3):
        super().__init__()
        num_patches = (image_size // patch_size) ** 2
        self.patch_size = patch_size
        self.pos_embedding = nn.Parameter(torch.randn(1, num_patches + 1, dim))
        self.patch_to_embedding = nn.Linear(channels * patch_size ** 2, dim)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim))
        self.transformer = CourseTransformer(dim, depth, heads, mlp_dim)
        self.to_cls_token = nn.Identity()
        self.mlp_head = nn.Sequential(nn.Linear(dim, mlp_dim), nn.GELU(), nn.Linear(mlp_dim, num_classes))

    def forward(self, img, mask=None):
        x = self.patch_to_embedding(_patches(img, self.patch_size))
        x = torch.cat((self.cls_token.expand(img.shape[0], -1, -1), x), dim=1)
        x += self.pos_embedding
        x = self.transformer(x, mask)
        return self.mlp_head(self.to_cls_token(x[:, 0]))


def course_epoch(model, optimizer, train_loader, test_loader) -> tuple[float, float]:
    """The notebook's train_epoch + evaluate (without the prints); returns (last logged loss, accuracy)."""
    model.train()
    logged = 0.0
    for i, (data, target) in enumerate(train_loader):
        optimizer.zero_grad()
        output = F.log_softmax(model(data), dim=1)
        loss = F.nll_loss(output, target)
        loss.backward()
        optimizer.step()
        if i % 100 == 0:
            logged = loss.item()
    model.eval()
    correct, total_loss = 0, 0.0
    with torch.no_grad():
        for data, target in test_loader:
            output = F.log_softmax(model(data), dim=1)
            total_loss += F.nll_loss(output, target, reduction="sum").item()
            _, pred = torch.max(output, dim=1)
            correct += pred.eq(target).sum()
    return logged, float(correct) / len(test_loader.dataset)


# ---------------------------------------------------------------- labbench's loop
def labbench_epoch(model, opt, x, y, x_test, y_test, prec, gen, batch_size=128) -> float:
    """The 3.4-vit exercise's epoch: index batches, the loss meter, evaluate()."""
    meter = LossMeter()
    model.train()
    for idx in batch_indices(len(x), batch_size, generator=gen):
        with prec.autocast():
            loss = nll(model(x[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        prec.minimize(loss, opt)
        meter.add(len(idx), train=loss)
    _, acc, _ = evaluate(model, x_test, y_test, loss_fn=nll, precision=prec)
    meter.means()
    return float(acc)


def timed(fn) -> tuple[float, float]:
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w, time.process_time() - c


def cpu_has_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
        return any(f in flags for f in ("avx512_bf16", "amx_bf16"))
    except OSError:
        return False


def gpu_calculation(peak_tflops: float, utilisation: float) -> None:
    """Table 5 on an H100 as arithmetic: FLOPs of 20 epochs (training = 3 x
    the forward pass on 60,000 images, plus the forward pass on 10,000 test
    images, each epoch) at a bf16 peak and an assumed utilisation."""
    print("\nCALCULATION (not a measurement; no GPU here): report Table 5 on one H100, bf16 dense peak "
          f"{peak_tflops:g} TFLOP/s")
    print(f"{'dim/depth/heads/mlp':<21} {'MFLOP/img':>9} {'TFLOP/run':>9} {'s @ peak':>9} "
          f"{'s @ ' + format(utilisation, '.0%'):>9} {'Colab s (report)':>17}")
    tot = {"peak": 0.0, "util": 0.0, "colab": 0.0}
    for arch, (_, colab) in TABLE5.items():
        f = forward_flops(*parse_arch(arch))
        run_flops = 20 * (3 * 60_000 + 10_000) * f
        peak = run_flops / (peak_tflops * 1e12)
        tot["peak"] += peak
        tot["util"] += peak / utilisation
        tot["colab"] += colab
        print(f"{arch:<21} {f / 1e6:9.2f} {run_flops / 1e12:9.1f} {peak:9.3f} {peak / utilisation:9.2f} {colab:17.1f}")
    print(f"{'all six':<21} {'':>9} {'':>9} {tot['peak']:9.3f} {tot['util']:9.2f} {tot['colab']:17.1f}")
    print("These models are far too small to keep an H100 busy: the time is set by kernel launches and the\n"
          "Python loop (a few hundred kernels per step, 469 steps per epoch), not by FLOPs. At ~5 us a launch and\n"
          "~400 launches per training step, one epoch costs ~1 s of launch latency alone, 20 epochs ~20 s per\n"
          "setting; torch.compile (fused kernels; CUDA graphs with mode='reduce-overhead') is what cuts that.")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=10_000, help="training images per epoch (default 10,000)")
    ap.add_argument("--test-images", type=int, default=None,
                    help="test images evaluated per epoch (default: images / 6, the course's 60,000:10,000)")
    ap.add_argument("--arch", default="64/6/8/128", help="dim/depth/heads/mlp_dim (default: the course's)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads for both (default: torch's)")
    ap.add_argument("--bf16", choices=["auto", "on", "off"], default="auto",
                    help="also time bf16 autocast (auto: when the CPU has bf16 instructions)")
    ap.add_argument("--skip-course", action="store_true")
    ap.add_argument("--peak-tflops", type=float, default=989.0, help="GPU bf16 dense peak for the calculation")
    ap.add_argument("--utilisation", type=float, default=0.05, help="assumed GPU utilisation for the calculation")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    n_test = args.test_images or max(1, args.images // 6)
    try:
        x, y = mnist.tensors("mnist", "train", limit=args.images)
        x_test, y_test = mnist.tensors("mnist", "test", limit=n_test)
    except DataError as exc:
        raise SystemExit(f"error: {exc}")
    dim, depth, heads, mlp_dim = parse_arch(args.arch)
    n = len(x)
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
          f"bf16 instructions: {cpu_has_bf16()}, torch {torch.__version__}, "
          f"einops: {'yes' if rearrange is not None else 'no (equivalent reshapes)'}")
    print(f"one epoch of the course ViT {args.arch} (dim/depth/heads/mlp_dim): train on {n} MNIST images "
          f"(batch 128, Adam), evaluate on {len(x_test)}\n")

    torch.manual_seed(0)
    ref = ViT(image_size=28, patch_size=7, num_classes=10, channels=1, dim=dim, depth=depth, heads=heads,
              mlp_dim=mlp_dim)
    init = {k: v.clone() for k, v in ref.state_dict().items()}

    results: dict[str, tuple[float, float, float]] = {}
    modes = [("labbench fp32 (precision = fp32)", "fp32")]
    if args.bf16 == "on" or (args.bf16 == "auto" and cpu_has_bf16()):
        modes.append(("labbench bf16 autocast (precision = bf16)", "bf16"))
    for label, prec_name in modes:
        model = ViT(image_size=28, patch_size=7, num_classes=10, channels=1, dim=dim, depth=depth, heads=heads,
                    mlp_dim=mlp_dim, attention="math")
        model.load_state_dict(init)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        prec = precision(prec_name, torch.device("cpu"))
        labbench_epoch(model, opt, x[:512], y[:512], x_test[:256], y_test[:256], prec, make_generator(1))  # warm-up
        acc = []
        wall, cpu = timed(lambda: acc.append(labbench_epoch(model, opt, x, y, x_test, y_test, prec,
                                                            make_generator(0))))
        results[label] = (wall, cpu, acc[0])

    course = None
    if not args.skip_course:
        import torchvision

        with tempfile.TemporaryDirectory() as tmp:
            raw = Path(tmp) / "MNIST" / "raw"
            raw.mkdir(parents=True)
            src = mnist.require("mnist") / "mnist"
            for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                         "t10k-labels-idx1-ubyte"):
                with gzip.open(src / f"{name}.gz", "rb") as fin, open(raw / name, "wb") as fout:
                    shutil.copyfileobj(fin, fout)
            to_tensor = torchvision.transforms.ToTensor()
            train_ds = torch.utils.data.Subset(
                torchvision.datasets.MNIST(tmp, train=True, transform=to_tensor, download=False), range(n))
            test_ds = torch.utils.data.Subset(
                torchvision.datasets.MNIST(tmp, train=False, transform=to_tensor, download=False), range(len(x_test)))
            train_loader = torch.utils.data.DataLoader(train_ds, batch_size=128, shuffle=True)
            test_loader = torch.utils.data.DataLoader(test_ds, batch_size=128, shuffle=False)
            model = CourseViT(image_size=28, patch_size=7, num_classes=10, channels=1, dim=dim, depth=depth,
                              heads=heads, mlp_dim=mlp_dim)
            model.load_state_dict(init)  # the same names: the same starting point
            opt = torch.optim.Adam(model.parameters(), lr=0.001)
            warm = torch.utils.data.DataLoader(torch.utils.data.Subset(train_ds, range(min(512, n))), batch_size=128)
            course_epoch(model, opt, warm, torch.utils.data.DataLoader(
                torch.utils.data.Subset(test_ds, range(min(256, len(test_ds)))), batch_size=128))
            acc = []
            wall, cpu = timed(lambda: acc.append(course_epoch(model, opt, train_loader, test_loader)[1]))
            course = (wall, cpu, acc[0])
        ein = "einops" if rearrange is not None else "reshapes"
        results[f"course loop (ToTensor + DataLoader, {ein}, einsum, .item())"] = course

    print(f"{'way':<62} {'wall s':>7} {'cpu s':>7} {'img/s':>6} {'test acc':>8} {'ratio wall':>10} "
          f"{'ratio cpu':>9}")
    for label, (wall, cpu, acc) in results.items():
        rw = f"{wall / course[0]:10.2f}" if course else f"{'-':>10}"
        rc = f"{cpu / course[1]:9.2f}" if course else f"{'-':>9}"
        print(f"{label:<62} {wall:7.2f} {cpu:7.2f} {n / wall:6.0f} {acc:8.4f} {rw} {rc}")
    if course:
        print("\nratio = labbench / course loop (target 0.4); cpu s = this process's CPU time, steadier than wall "
              "time on a shared machine")
    gpu_calculation(args.peak_tflops, args.utilisation)


if __name__ == "__main__":
    main()
