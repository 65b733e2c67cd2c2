"""A sample-quality score for generative models: what a loss curve cannot say.

A GAN's losses do not tell whether it draws good digits, or only ever the
same three. This module scores a batch of samples with a small classifier
trained once on the real data:

- **Frechet distance** (FD) between the classifier's penultimate-layer
  features of the samples and of the real test images (each set summarised
  by a Gaussian: ``|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2))``; the
  recipe of the FID, with a small MNIST classifier in place of Inception);
- the **class histogram** of the samples as the classifier labels them, its
  **entropy** (log2 10 = 3.32 bits when all ten classes are equally common)
  and the **missing classes** (under a fifth of their fair share): mode
  collapse shows as missing digits;
- the **floor**: the same FD for as many real *training* images against the
  real test images; no generator can be expected to beat it, so the score
  reads as "how far above the floor".

The classifier is trained on first use (2 epochs of the full training set;
a few seconds on a GPU, under a minute on a laptop CPU) and cached in the
data folder (``.cache/scorers/``, or the user's cache folder when the data
folder is read only), with the data's SHA-256, the torch version, its settings and test
accuracy recorded; a cache made from other data is never used. Scoring
10,000 samples takes about a second.

Exercises call :func:`sample_quality`::

    metrics.update(sample_quality(run, lambda k: generator(torch.randn(k, 10, device=dev)), p.quality_samples,
                                  value_range=(-1, 1)))

CIFAR-10 (a stretch): the same with a small CIFAR-10 CNN, ``dataset="cifar10"``;
with ``target_class`` the reference is that class's test images, the floor
that class's training images, and the histogram says how many samples the
classifier takes for that class (``on_class``).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

FORMAT = "labbench-scorer"
VERSION = 1
#: a class is "missing" when it gets less than this share of a uniform histogram
MISSING_SHARE = 0.2

#: how each scorer is trained by default (epochs over the training set, batch, Adam lr)
DEFAULTS = {
    "mnist": {"epochs": 2, "batch_size": 128, "lr": 2e-3, "train_limit": None, "seed": 0},
    "cifar10": {"epochs": 8, "batch_size": 128, "lr": 2e-3, "train_limit": None, "seed": 0},
}


class ScorerError(Exception):
    """The scorer cannot be made or used (missing data, a bad input shape)."""


# ---------------------------------------------------------------- networks
class MnistScoreNet(torch.nn.Module):
    """A LeNet-sized MNIST classifier: conv 5x5 (16) - pool - conv 5x5 (32) -
    pool - 128 features (ReLU) - 10 classes (about 99% test accuracy)."""

    n_features = 128

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Sequential(
            torch.nn.Conv2d(1, 16, 5), torch.nn.ReLU(), torch.nn.MaxPool2d(2),    # 28 -> 24 -> 12
            torch.nn.Conv2d(16, 32, 5), torch.nn.ReLU(), torch.nn.MaxPool2d(2),   # 12 -> 8 -> 4
            torch.nn.Flatten())
        self.features = torch.nn.Sequential(torch.nn.Linear(32 * 4 * 4, self.n_features), torch.nn.ReLU())
        self.head = torch.nn.Linear(self.n_features, 10)

    def embed(self, x):
        return self.features(self.conv(x))

    def forward(self, x):
        return self.head(self.embed(x))


class CifarScoreNet(torch.nn.Module):
    """A small CIFAR-10 classifier: three conv-BN-ReLU-pool blocks (32, 64,
    128 channels) - 128 features - 10 classes."""

    n_features = 128

    def __init__(self):
        super().__init__()
        layers = []
        for cin, cout in ((3, 32), (32, 64), (64, 128)):
            layers += [torch.nn.Conv2d(cin, cout, 3, padding=1), torch.nn.BatchNorm2d(cout), torch.nn.ReLU(),
                       torch.nn.MaxPool2d(2)]
        self.conv = torch.nn.Sequential(*layers, torch.nn.Flatten())  # 32 -> 16 -> 8 -> 4
        self.features = torch.nn.Sequential(torch.nn.Linear(128 * 4 * 4, self.n_features), torch.nn.ReLU())
        self.head = torch.nn.Linear(self.n_features, 10)

    def embed(self, x):
        return self.features(self.conv(x))

    def forward(self, x):
        return self.head(self.embed(x))


NETS = {"mnist": MnistScoreNet, "cifar10": CifarScoreNet}
SHAPES = {"mnist": (1, 28, 28), "cifar10": (3, 32, 32)}


# ------------------------------------------------------------ statistics
def feature_stats(features) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (float64) of (N, D) features."""
    f = features.detach().double().cpu().numpy() if hasattr(features, "detach") else np.asarray(features, float)
    if f.ndim != 2 or len(f) < 2:
        raise ScorerError(f"features must be (N, D) with N >= 2, got {f.shape}")
    return f.mean(axis=0), np.cov(f, rowvar=False)


def _sqrt_psd(s: np.ndarray) -> np.ndarray:
    vals, vecs = np.linalg.eigh((s + s.T) / 2)
    return (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """``|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2))`` between two Gaussians.

    The trace of the matrix square root is taken from the eigenvalues of
    ``S1^(1/2) S2 S1^(1/2)`` (symmetric, same eigenvalues as ``S1 S2``), so no
    complex parts appear for nearly singular covariances."""
    mu1, mu2 = np.asarray(mu1, float), np.asarray(mu2, float)
    s1, s2 = np.atleast_2d(np.asarray(sigma1, float)), np.atleast_2d(np.asarray(sigma2, float))
    r1 = _sqrt_psd(s1)
    m = r1 @ s2 @ r1
    ev = np.linalg.eigvalsh((m + m.T) / 2)
    tr_sqrt = float(np.sqrt(np.clip(ev, 0, None)).sum())
    d = float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt)
    return max(d, 0.0)


def class_entropy(counts) -> float:
    """Entropy in bits of a histogram (0 for one class, log2 K for K equal ones)."""
    c = np.asarray(counts, dtype=float)
    total = c.sum()
    if total <= 0:
        return 0.0
    p = c[c > 0] / total
    return max(0.0, float(-(p * np.log2(p)).sum()))  # never -0.0


def missing_classes(counts, share: float = MISSING_SHARE) -> list[int]:
    """Classes with less than ``share`` of a uniform histogram's count."""
    c = np.asarray(counts, dtype=float)
    fair = c.sum() / max(len(c), 1)
    return [int(i) for i in np.nonzero(c < share * fair)[0]]


# ----------------------------------------------------------------- data
def _raw(dataset: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (N, H, W) or (N, H, W, 3) and labels of the real data."""
    if dataset == "mnist":
        from ..data import mnist
        return mnist.load("mnist", split)
    if dataset == "cifar10":
        from ..data import cifar
        return cifar.load(split)
    raise ScorerError(f'no scorer for data set "{dataset}" (known: {", ".join(NETS)})')


def _to_float(images: np.ndarray) -> torch.Tensor:
    """uint8 images as float (N, C, H, W) in [0, 1] on the CPU."""
    x = torch.from_numpy(np.ascontiguousarray(images))
    x = x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2)
    return x.float().div_(255.0).contiguous()


def _real_data(dataset: str, split: str, *, label: int | None = None, pick: torch.Tensor | None = None,
               limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(x in [0, 1] (N, C, H, W) float on the CPU, y): the split, or its images
    of one ``label``, then the rows ``pick`` or the first ``limit``; only the
    chosen images are made float."""
    images, labels = _raw(dataset, split)
    if label is not None:
        keep = np.nonzero(labels == label)[0]
        images, labels = images[keep], labels[keep]
    if pick is not None:
        idx = pick.numpy()
        images, labels = images[idx], labels[idx]
    elif limit is not None:
        images, labels = images[:limit], labels[:limit]
    return _to_float(images), torch.from_numpy(np.asarray(labels, dtype=np.int64))


_CHECKSUMS: dict[tuple, str] = {}


def data_checksum(dataset: str) -> str:
    """SHA-256 of the decoded images and labels of both splits (independent of
    how the files are packed); computed once per process for the same files."""
    from ..data import get_dataset

    stats = []
    for path in get_dataset("cifar10" if dataset == "cifar10" else "mnist").paths():
        if path.exists():
            st = path.stat()
            stats.append((str(path), st.st_size, st.st_mtime_ns))
    key = (dataset, tuple(stats))
    if key not in _CHECKSUMS:
        h = hashlib.sha256()
        for split in ("train", "test"):
            images, labels = _raw(dataset, split)
            h.update(f"{split}:{images.shape}:{labels.shape};".encode())
            h.update(np.ascontiguousarray(images).tobytes())
            h.update(np.ascontiguousarray(labels).astype(np.int64).tobytes())
        _CHECKSUMS[key] = h.hexdigest()
    return _CHECKSUMS[key]


def scorer_folder() -> Path:
    """``scorers/`` in the data folder's cache (the data folder itself when
    writable, else the user's cache folder)."""
    from ..data import cache_dir

    folder = cache_dir() / "scorers"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# --------------------------------------------------------------- scorer
@dataclass
class QualityScore:
    """The score of one batch of samples."""

    dataset: str
    n: int
    fd: float
    floor: float
    counts: list[int]
    classes: list[str]
    target_class: int | None = None
    extra: dict = field(default_factory=dict)

    @property
    def entropy_bits(self) -> float:
        return class_entropy(self.counts)

    @property
    def missing(self) -> list[int]:
        return missing_classes(self.counts)

    @property
    def on_class(self) -> float | None:
        if self.target_class is None:
            return None
        return self.counts[self.target_class] / max(sum(self.counts), 1)

    def metrics(self) -> dict:
        out = {"fd": self.fd, "fd_floor": self.floor, "quality_samples": self.n}
        if self.target_class is None:
            out["class_entropy_bits"] = self.entropy_bits
            out["missing_classes"] = len(self.missing)
        else:
            out["on_class"] = self.on_class
        return out

    def line(self) -> str:
        """One sentence for the run log."""
        text = (f"sample quality ({self.n:,} samples): Frechet distance {self.fd:.2f} "
                f"(floor, real train vs real test: {self.floor:.2f})")
        if self.target_class is None:
            miss = ", ".join(self.classes[i] for i in self.missing)
            text += (f"; class entropy {self.entropy_bits:.2f} of {math.log2(len(self.counts)):.2f} bits; "
                     + (f"missing: {miss}" if miss else "no class missing"))
        else:
            text += f"; {100 * self.on_class:.1f}% classified as {self.classes[self.target_class]}"
        return text


class Scorer:
    """A trained classifier with the real test images' feature statistics."""

    def __init__(self, dataset: str, net: torch.nn.Module, info: dict, path: Path | None = None):
        self.dataset, self.net, self.info, self.path = dataset, net.eval(), info, path
        self.device = next(net.parameters()).device
        self._ref: dict[int | None, tuple[np.ndarray, np.ndarray]] = {}

    # -------------------------------------------------------- features
    @torch.no_grad()
    def embed(self, x: torch.Tensor, batch_size: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
        """(features, predicted classes) of images in [0, 1]; flat rows are reshaped."""
        shape = SHAPES[self.dataset]
        x = x.detach()
        if x.dim() == 2 or (x.dim() == 3 and shape[0] == 1):
            x = x.reshape(len(x), *shape)
        if tuple(x.shape[1:]) != shape:
            raise ScorerError(f"{self.dataset} samples must be (N, {', '.join(map(str, shape))}), "
                              f"got {tuple(x.shape)}")
        feats, preds = [], []
        self.net.eval()
        for start in range(0, len(x), batch_size):
            xb = x[start:start + batch_size].to(self.device, torch.float32)
            f = self.net.embed(xb)
            feats.append(f.double().cpu())
            preds.append(self.net.head(f).argmax(1).cpu())
        return torch.cat(feats), torch.cat(preds)

    def reference(self, target_class: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Feature mean and covariance of the real test images (of one class)."""
        if target_class not in self._ref:
            x, _ = _real_data(self.dataset, "test", label=target_class)
            self._ref[target_class] = feature_stats(self.embed(x)[0])
        return self._ref[target_class]

    def floor(self, n: int, target_class: int | None = None) -> float:
        """The FD of ``n`` real training images (a fixed random choice) against the
        real test images: the best a generator can be expected to reach."""
        key = f"{n}" if target_class is None else f"{n}/{target_class}"
        floors = self.info.setdefault("floors", {})
        if key not in floors:
            images, labels = _raw(self.dataset, "train")
            count = int((labels == target_class).sum()) if target_class is not None else len(labels)
            g = torch.Generator().manual_seed(1234)
            pick = torch.randperm(count, generator=g)[: max(2, min(n, count))]
            x, _ = _real_data(self.dataset, "train", label=target_class, pick=pick)
            mu, sigma = feature_stats(self.embed(x)[0])
            floors[key] = frechet_distance(mu, sigma, *self.reference(target_class))
            self._save_floors()
        return float(floors[key])

    def _save_floors(self) -> None:
        if self.path is None or not self.path.exists():
            return
        try:
            payload = torch.load(self.path, map_location="cpu", weights_only=True)
            payload["floors"] = dict(self.info["floors"])
            _save(payload, self.path)
        except Exception:  # a read-only or damaged cache only costs a recomputation
            pass

    def score(self, samples: torch.Tensor, target_class: int | None = None) -> QualityScore:
        """Score images in [0, 1] (N, C, H, W) or flat."""
        if len(samples) < 2:
            raise ScorerError(f"at least 2 samples are needed for a Frechet distance, got {len(samples)}")
        feats, preds = self.embed(samples)
        mu, sigma = feature_stats(feats)
        fd = frechet_distance(mu, sigma, *self.reference(target_class))
        counts = torch.bincount(preds, minlength=10).tolist()
        return QualityScore(self.dataset, len(samples), fd, self.floor(len(samples), target_class), counts,
                            class_names(self.dataset), target_class)

    # -------------------------------------------------------- making it
    @classmethod
    def load_or_train(cls, dataset: str = "mnist", device: torch.device | str = "cpu", *,
                      log: Callable[[str], object] | None = None, folder: Path | None = None,
                      train: bool = True, **settings) -> "Scorer | None":
        """The cached scorer for ``dataset`` (trained now when there is none for
        this data and these settings; ``train=False`` returns None instead)."""
        if dataset not in NETS:
            raise ScorerError(f'no scorer for data set "{dataset}" (known: {", ".join(NETS)})')
        say = log or (lambda s: None)
        unknown = set(settings) - set(DEFAULTS[dataset])
        if unknown:
            raise ScorerError(f"unknown scorer settings {sorted(unknown)}; known: {sorted(DEFAULTS[dataset])}")
        cfg = {**DEFAULTS[dataset], **settings}
        checksum = data_checksum(dataset)
        key = hashlib.sha256(repr((VERSION, dataset, checksum, sorted(cfg.items()))).encode()).hexdigest()[:12]
        folder = Path(folder) if folder is not None else scorer_folder()
        path = folder / f"{dataset}-scorer-v{VERSION}-{key}.pt"
        dev = torch.device(device)
        net = NETS[dataset]()
        if path.exists():
            try:
                payload = torch.load(path, map_location="cpu", weights_only=True)
                if payload.get("format") != FORMAT or payload.get("data_sha256") != checksum:
                    raise ValueError("made from other data")
                net.load_state_dict(payload["state_dict"])
                info = {k: v for k, v in payload.items() if k != "state_dict"}
                if info.get("torch") != str(torch.__version__):
                    say(f"the sample-quality classifier was trained with torch {info.get('torch')}, this is "
                        f"{torch.__version__}: scores may differ slightly from those of other runs")
                return cls(dataset, net.to(dev), info, path)
            except Exception as exc:  # damaged or foreign: train again
                say(f"the cached sample-quality classifier {path.name} cannot be used ({exc}); training it again")
        if not train:
            return None
        epochs = int(cfg["epochs"])
        say(f"training the {dataset} sample-quality classifier once ({epochs} epoch{'s' if epochs != 1 else ''}; "
            f"cached in {folder})")
        info = train_scorer(net, dataset, dev, cfg)
        info.update(format=FORMAT, version=VERSION, dataset=dataset, data_sha256=checksum,
                    torch=str(torch.__version__),
                    settings=dict(cfg),
                    created=_dt.datetime.now().astimezone().isoformat(timespec="seconds"), floors={})
        say(f"sample-quality classifier: test accuracy {info['test_acc']:.4f} in {info['train_s']:.1f} s")
        try:
            _save({**info, "state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()}}, path)
        except OSError as exc:
            say(f"the sample-quality classifier could not be cached ({exc}); it will be trained again next time")
            path = None
        return cls(dataset, net.eval(), info, path)


def _save(payload: dict, path: Path) -> None:
    from .checkpoint import save_atomic
    save_atomic(payload, path)


def class_names(dataset: str) -> list[str]:
    if dataset == "cifar10":
        from ..data.cifar import CLASSES
        return list(CLASSES)
    return [str(d) for d in range(10)]


@torch.enable_grad()  # also when called under no_grad (sample_quality is)
def train_scorer(net: torch.nn.Module, dataset: str, device: torch.device, cfg: dict) -> dict:
    """Train the classifier on the training set (Adam, flips for CIFAR); returns
    its test accuracy and training time."""
    import time

    from .batching import batch_indices, make_generator

    x, y = _real_data(dataset, "train", limit=cfg.get("train_limit"))
    x, y = x.to(device), y.to(device)
    g = make_generator(int(cfg["seed"]))
    torch_state = torch.get_rng_state()  # the run's random stream is left as it was
    torch.manual_seed(int(cfg["seed"]))
    for m in net.modules():  # the same initial weights whatever the run's seed
        if m is not net and hasattr(m, "reset_parameters"):
            m.reset_parameters()
    torch.set_rng_state(torch_state)
    net.to(device).train()
    opt = torch.optim.Adam(net.parameters(), lr=float(cfg["lr"]))
    epochs = int(cfg["epochs"])
    steps = epochs * math.ceil(len(x) / int(cfg["batch_size"]))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=float(cfg["lr"]), total_steps=max(steps, 1))
    t0 = time.perf_counter()
    for _ in range(epochs):
        for idx in batch_indices(len(x), int(cfg["batch_size"]), generator=g, device=device):
            xb = x[idx]
            if dataset == "cifar10":  # horizontal flips: a free 1-2% of accuracy
                flip = (torch.rand(len(xb), generator=g) < 0.5).to(device)
                xb = torch.where(flip[:, None, None, None], xb.flip(3), xb)
            loss = F.cross_entropy(net(xb), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    recalibrate_batch_norm(net, x, int(cfg["batch_size"]))
    train_s = time.perf_counter() - t0
    net.eval()
    xt, yt = _real_data(dataset, "test")
    with torch.no_grad():
        pred = torch.cat([net(xt[i:i + 1000].to(device)).argmax(1).cpu() for i in range(0, len(xt), 1000)])
    return {"test_acc": float((pred == yt).float().mean()), "train_s": train_s, "train_images": len(x)}


@torch.no_grad()
def recalibrate_batch_norm(net: torch.nn.Module, x: torch.Tensor, batch_size: int, limit: int = 10_000) -> None:
    """Batch-norm running statistics as the plain average over (up to
    ``limit``) training images with the final weights, instead of the
    moving average of the training steps (which lags, badly after a short
    training)."""
    norms = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    net.train()
    for start in range(0, min(len(x), limit), batch_size):
        net(x[start:start + batch_size])
    for m, mom in zip(norms, saved):
        m.momentum = mom


# ------------------------------------------------------- for exercises
_SCORERS: dict[tuple, Scorer] = {}


def get_scorer(dataset: str = "mnist", device: torch.device | str = "cpu", *, log=None, train: bool = True,
               folder: Path | None = None, **settings) -> Scorer | None:
    """:meth:`Scorer.load_or_train`, kept in memory for the process (a sweep
    loads it once)."""
    from ..data import data_root

    cfg = {**DEFAULTS.get(dataset, {}), **settings}
    key = (dataset, str(device), str(folder or scorer_folder()), str(data_root()), repr(sorted(cfg.items())))
    if key not in _SCORERS:
        scorer = Scorer.load_or_train(dataset, device, log=log, folder=folder, train=train, **settings)
        if scorer is None:
            return None
        _SCORERS[key] = scorer
    return _SCORERS[key]


@torch.no_grad()
def sample_quality(run, generate: Callable[[int], torch.Tensor] | torch.Tensor, n: int, *, dataset: str = "mnist",
                   value_range: tuple[float, float] = (0.0, 1.0), target_class: int | None = None,
                   train: bool = True, chunk: int = 1000, name: str = "sample classes") -> dict:
    """Score ``n`` samples (``generate(k)`` returns k images in ``value_range``,
    or a tensor of samples), report them (a bar chart of the classes, one log
    line) and return the metrics for the summary (empty when ``n`` is 0, or
    when the classifier is not trained yet and ``train`` is False)."""
    if n <= 0:
        return {}
    dev = run.device or torch.device("cpu")
    scorer = get_scorer(dataset, dev, log=run.text, train=train)
    if scorer is None:
        run.text("sample quality skipped: its classifier is not trained yet (the first full run trains it)",
                 "warning")
        return {}
    if isinstance(generate, torch.Tensor):
        samples = generate[:n]
    else:
        parts, left = [], n
        while left > 0:
            k = min(chunk, left)
            parts.append(generate(k).detach().float().cpu())
            left -= k
        samples = torch.cat(parts)
    lo, hi = value_range
    samples = ((samples.float() - lo) / max(hi - lo, 1e-12)).clamp(0, 1)
    result = scorer.score(samples, target_class)
    classes = result.classes
    title = (f"classes of {result.n:,} samples by the {dataset} classifier "
             f"(entropy {result.entropy_bits:.2f} of {math.log2(10):.2f} bits)")
    if target_class is None and result.missing:
        title += "; missing: " + ", ".join(classes[i] for i in result.missing)
    run.figure(name, "bar", title=title, labels=classes, values=result.counts, xlabel="class", ylabel="samples")
    run.text(result.line())
    return result.metrics()
