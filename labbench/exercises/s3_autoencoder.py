"""Session 3.2 - an autoencoder on MNIST (course notebook ``ae_sae.ipynb``, first part).

Course notebook: ``torch.manual_seed(42)``, a random 10,000 training and 1,000
test MNIST images (``ToTensor``: pixels / 255), the model

    Linear(784, d) - ReLU - Linear(d, 784) - sigmoid,   d = encoding_dim = 32

trained with MSE and Adam (lr 1e-3), batch 32, 20 epochs, then the test loss
and ten test digits above their reconstructions.

The notebook prints ``train_loss += loss.item() * images.size(0)`` summed over
the batches and divided by ``len(train_loader)``, the number of *batches*: the
per-pixel MSE times about the batch size (10,000 / 313 = 31.95). The report's
table is on that scale. Here both are shown: the per-pixel MSE and the course's
figure, labelled as the course's scale.

How it is made fast: the chosen images are one (N, 784) tensor on the device,
shuffled with one gather an epoch and cut into batches as slices (no
DataLoader, no per-image ``ToTensor``), the losses are summed on the device and
read once per epoch, Adam updates all parameters in one fused kernel, and on
the CPU the tiny matrix products run on one thread.
"""

from __future__ import annotations

import math
import time
from typing import Optional

import torch
import torch.nn.functional as F
from pydantic import Field

from ..engine import Exercise, Run
from ..nn import (DeepParams, LossMeter, compile_model, count_parameters, cpu_threads, make_generator, make_optimizer,
                  mnist_subsets, precision, reconstruction_grid, unit_images)

DESCRIPTION = """
An **autoencoder** squeezes each 28x28 digit (784 pixels) through a code of
*d* numbers and rebuilds it:

    Linear(784, d) - ReLU - Linear(d, 784) - sigmoid

trained to reproduce its input (MSE, Adam lr 1e-3, batch 32, 20 epochs) on a
random 10,000 training and 1,000 test images (seed 42), as the course does.
With d = 32 the model has **50,992** parameters (784 x 32 + 32 + 32 x 784 + 784).

Two loss scales are shown side by side: the **per-pixel MSE**, and the figure
the course notebook prints, (sum of batch loss x batch size) / number of
batches, which is the per-pixel MSE times about the batch size (x 31.95 for
10,000 images in batches of 32) - labelled **course scale**. The floor to beat
is the **mean image**: predicting the average training digit for every test
digit.

The report's table, on the course scale (report):

| d | epochs | loss, course scale |
|---|---|---|
| 16 | 20 | 0.636 (report) |
| 64 | 1 | 0.438 (report) |
| 64 | 5 | 0.107 (report) |
| 64 | 20 | 0.096 (report) |
| 128 | 20 | 0.037 (report) |

The preset "report table" runs d = 16, 64, 128 for 1, 5 and 20 epochs and puts
this set-up's figures next to the report's. They come out higher than the
report's, most at 1 epoch; the report does not say what else it changed
(training on more images gets closer). Colab needed about 3 min 40 s for 20
epochs (report).

Shown: both losses per epoch, test digits above their reconstructions
(refreshed every epoch), and the encoder's weights as images (what each code
unit looks for).

Questions: how does the reconstruction error fall with the code size d? Which
details of a digit does a small code lose first? Why does the course's figure
change with the batch size when the model does not?
"""


class AutoencoderParams(DeepParams):
    encoding_dim: int = Field(32, ge=1, le=4096, description="Code size d (course: 32; report: 16, 64, 128)")
    epochs: int = Field(20, ge=1, le=1000, description="Epochs (course: 20)")
    batch_size: int = Field(32, ge=1, le=60_000, description="Mini-batch size (course: 32)")
    lr: float = Field(1e-3, gt=0, le=10, description="Adam learning rate (course: 1e-3)")
    subset_seed: int = Field(42, ge=0, description="Seed that picks the random images (course: 42, as "
                                                   "torch.manual_seed(42) + randperm)")
    train_limit: Optional[int] = Field(10_000, ge=1, le=60_000,
                                       description="Random training images (course: 10,000; unset: all 60,000)")
    test_limit: Optional[int] = Field(1_000, ge=1, le=10_000,
                                      description="Random test images (course: 1,000; unset: all 10,000)")
    show_digits: int = Field(10, ge=0, le=64, description="Test digits shown above their reconstructions")
    # precision, compile, channels_last (unused: no convolutions), checkpoint_every: DeepParams


#: the report's table on the course scale: {(d, epochs): loss}
REPORT = {(16, 20): 0.636, (64, 1): 0.438, (64, 5): 0.107, (64, 20): 0.096, (128, 20): 0.037}


# ----------------------------------------------------------------------- model
class Autoencoder(torch.nn.Module):
    """The course's autoencoder: ReLU code, sigmoid output (PyTorch's default init)."""

    def __init__(self, encoding_dim: int = 32):
        super().__init__()
        self.encoder = torch.nn.Linear(784, encoding_dim)
        self.decoder = torch.nn.Linear(encoding_dim, 784)

    def encode(self, x):
        return F.relu(self.encoder(x))

    def forward(self, x):
        return torch.sigmoid(self.decoder(self.encode(x)))


def course_scale(loss_sum: float, n_batches: int) -> float:
    """The notebook's printed loss: (sum over batches of batch loss x batch
    size) / number of batches. ``loss_sum`` is that sum (= N x per-pixel MSE)."""
    return loss_sum / max(int(n_batches), 1)


@torch.no_grad()
def per_pixel_mse(model, x: torch.Tensor, prec=None, chunk: int = 2000) -> tuple[float, torch.Tensor]:
    """(per-pixel MSE over all of ``x``, the reconstructions), in eval mode."""
    was = model.training
    model.eval()
    outs, total = [], torch.zeros((), device=x.device)
    for start in range(0, len(x), chunk):
        xb = x[start:start + chunk]
        if prec is not None:
            with prec.autocast():
                out = model(xb)
        else:
            out = model(xb)
        out = out.float()
        total += F.mse_loss(out, xb, reduction="sum")
        outs.append(out)
    model.train(was)
    recon = outs[0] if len(outs) == 1 else (torch.cat(outs) if outs else x[:0])
    return float(total) / max(x.numel(), 1), recon


def one_thread_pays(batch_size: int, encoding_dim: int) -> bool:
    """Products this small (under ~20 M multiply-adds a batch) run faster on one
    CPU thread than on several (see :func:`labbench.nn.cpu_threads`)."""
    return batch_size * 784 * encoding_dim < 20_000_000


def run(p: AutoencoderParams, run: Run) -> None:
    dev = run.device or torch.device("cpu")
    prec = precision(p.precision, dev)

    # --- data: the course's random subsets, flattened to 784 pixels in [0, 1]
    (x, _), (x_test, _) = mnist_subsets("mnist", p.train_limit, p.test_limit, seed=p.subset_seed, device=dev,
                                        flatten=True)
    n, n_test = len(x), len(x_test)
    n_batches = math.ceil(n / p.batch_size)
    n_test_batches = math.ceil(n_test / p.batch_size)
    baseline = float(((x_test - x.mean(0)) ** 2).mean())
    run.text(f"MNIST: {n:,} random training and {n_test:,} test images (subset seed {p.subset_seed}) on {dev}; "
             f"mean-image baseline: per-pixel MSE {baseline:.5f}")

    # --- model
    model = Autoencoder(p.encoding_dim).to(dev)
    n_params = count_parameters(model)
    opt = make_optimizer("adam", model.parameters(), lr=p.lr, fused=True)  # torch's Adam, one kernel a step
    net = compile_model(model, p.compile, device=dev, expected_s=p.epochs * n / 100_000, log=run.text)
    run.text(f"Autoencoder 784-{p.encoding_dim}-784: {n_params:,} parameters; Adam lr {p.lr:g}, batch {p.batch_size}; "
             f"{prec.describe()}. Course scale = per-pixel MSE x {n / n_batches:.2f} (train, {n_batches} batches), "
             f"x {n_test / n_test_batches:.2f} (test, {n_test_batches} batches)")

    # --- loop (resumable)
    gen = make_generator(run.seed)
    state = run.resumable(models=model, optimizers=opt, scaler=prec.scaler, generators={"shuffle": gen},
                          extra={"train_s": 0.0, "course_train": [], "course_test": []}, every=p.checkpoint_every)
    meter = LossMeter()
    k = min(p.show_digits, n_test)
    threads = 1 if dev.type == "cpu" and one_thread_pays(p.batch_size, p.encoding_dim) else None
    train_mse = test_mse = None
    for epoch in run.epochs(p.epochs):
        t0 = time.perf_counter()
        model.train()
        batches = images = 0
        with cpu_threads(threads, dev):
            shuffled = x[torch.randperm(n, generator=gen).to(dev)]  # one gather an epoch; batches are its slices
            for xb in run.batches(shuffled.split(p.batch_size)):
                with prec.autocast():
                    out = net(xb)
                loss = F.mse_loss(out.float(), xb)
                opt.zero_grad(set_to_none=True)
                prec.minimize(loss, opt)
                meter.add(len(xb), mse=loss)
                batches, images = batches + 1, images + len(xb)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        state["train_s"] += time.perf_counter() - t0
        train_mse = meter.means()["mse"]
        with cpu_threads(threads, dev):
            test_mse, recon = per_pixel_mse(model, x_test, prec)
        # the notebook's figures: sum of (batch loss x batch size) over the batches / number of batches
        course_train = course_scale(train_mse * images, batches)
        course_test = course_scale(test_mse * n_test, n_test_batches)
        state["course_train"].append(course_train)
        state["course_test"].append(course_test)
        run.scalars(epoch, {"per-pixel MSE/train": train_mse, "per-pixel MSE/test": test_mse,
                            "course scale/train": course_train, "course scale/test": course_test},
                    check=["per-pixel MSE/train"])
        if k:
            reconstruction_grid(run, "reconstructions", x_test[:k], recon[:k], n=k, shape=(28, 28), step=epoch,
                                title=f"test digits above their reconstructions (epoch {epoch}, "
                                      f"per-pixel MSE {test_mse:.4f})")

    # --- results
    done = run.step or 0  # whole epochs (a Stop inside an epoch leaves it out)
    if test_mse is None:  # stopped before the first epoch ended
        test_mse, recon = per_pixel_mse(model, x_test, prec)
    w = unit_images(model.encoder.weight, 64)
    run.images("encoder-weights", w, value_range=(-1.0, 1.0),
               title=f"encoder weights of the first {len(w)} code units, each scaled to its largest "
                     "(grey 0, white +, black -)")
    rows = []
    for (d, e), ref in REPORT.items():
        if d == p.encoding_dim and e <= done:
            rows.append([d, e, state["course_train"][e - 1], state["course_test"][e - 1], ref])
    if rows:
        run.table("report", ["d", "epochs", "course-scale train", "course-scale test", "report"], rows,
                  title="this run next to the report's table (course scale)",
                  note="course scale = (sum of batch loss x batch size) / number of batches")
    metrics = {"course_loss": state["course_train"][-1] if state["course_train"] else None}
    if (p.encoding_dim, done) in REPORT:
        metrics["report"] = REPORT[(p.encoding_dim, done)]
    metrics.update({
        "test_mse": test_mse,
        "course_test": state["course_test"][-1] if state["course_test"] else None,
        "train_mse": train_mse,
        "baseline_mse": baseline,
        "params": n_params,
        "epochs_done": done,
        "train_s": state["train_s"],
    })
    run.summary(**{key: v for key, v in metrics.items() if v is not None})


EXERCISE = Exercise(
    id="3.2-autoencoder",
    title="Autoencoder on MNIST: code size and reconstruction",
    session=3,
    description=DESCRIPTION,
    Params=AutoencoderParams,
    run=run,
    data=["mnist"],
    primary_metric="course_loss",
)
