"""Session 2.2 - automatic relevance determination (ARD) vs ordinary least squares.

Course notebook (after scikit-learn's classic ARD example): 100 samples of 100
Gaussian features of which only 10 matter; fit ``ARDRegression`` and
``LinearRegression`` and compare the weights with the truth. The diabetes
variant uses ARD to rank the Pima inputs by relevance and trains an MLP on all
of them vs on the selected ones.
"""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np
from pydantic import Field

from ..engine import Exercise, Params, Run

DESCRIPTION = """
**Automatic relevance determination** puts a separate Gaussian prior (precision
λ_i) on every weight and learns the λ_i by maximising the marginal likelihood;
weights of irrelevant inputs get a huge precision and are pruned to zero.

* **synthetic** (scikit-learn's classic example): X = randn(100, 100), 10
  relevant features with weights ~ N(0, 1/√4), noise ~ N(0, 1/√50). Ordinary
  least squares has as many weights as samples and spreads the signal over all
  of them; ARD finds the few that matter and its weight error is far smaller.
  Pictures: weights of ARD and OLS against the truth, a histogram of the ARD
  weights (log counts) with the relevant features marked, the log marginal
  likelihood per iteration.
* **diabetes**: ARD regression on the 0/1 Pima target ranks the eight inputs by
  relevance (report: dimensions 0, 5, 6 - pregnancies, BMI, pedigree), then an
  MLP is trained on all inputs and on the selected ones (report: 0.617 vs 0.708
  accuracy). labbench's preset (seed 0, standardised inputs) ranks glucose
  first - dimensions 1, 5, 0, 6 - and its MLP scores 0.779 on all inputs and
  0.779 on the top three.

Questions: why does OLS fail with as many weights as samples? What does the
marginal likelihood trade off? Is ARD's ranking a good feature selector for a
non-linear classifier?
"""


class ARDParams(Params):
    variant: Literal["synthetic", "diabetes"] = Field("synthetic", description="Synthetic ARD vs OLS, or Pima diabetes")
    n_samples: int = Field(100, ge=5, le=100_000, description="Synthetic: samples")
    n_features: int = Field(100, ge=2, le=10_000, description="Synthetic: features")
    n_relevant: int = Field(10, ge=1, description="Synthetic: relevant features (drawn with replacement, as the example)")
    weight_precision: float = Field(4.0, gt=0, description="Synthetic: precision lambda of the true weights")
    noise_precision: float = Field(50.0, gt=0, description="Synthetic: precision alpha of the noise")
    data_seed: int = Field(0, ge=0, description="Synthetic: seed of the data (the example uses 0)")
    max_iter: int = Field(300, ge=1, le=100_000, description="ARD: maximum iterations")
    threshold_lambda: float = Field(10_000.0, gt=0, description="ARD: prune weights whose precision exceeds this")
    n_select: int = Field(3, ge=1, le=8, description="Diabetes: inputs kept after the relevance ranking")
    mlp_hidden: list[int] = Field([50, 20], min_length=1, description="Diabetes: hidden layers of the MLP")
    mlp_solver: Literal["lbfgs", "sgd", "adam"] = Field("sgd", description="Diabetes: MLP solver")
    mlp_activation: Literal["relu", "tanh", "logistic", "identity"] = Field("tanh", description="Diabetes: MLP activation")
    mlp_max_iter: int = Field(500, ge=1, le=100_000, description="Diabetes: MLP maximum iterations")
    test_size: float = Field(0.2, gt=0, lt=0.9, description="Diabetes: fraction held out for testing (stratified)")


# ------------------------------------------------------------------- data
def synthetic_data(n_samples=100, n_features=100, n_relevant=10, weight_precision=4.0, noise_precision=50.0,
                   seed=0):
    """The classic example: returns X, y, the true weights and the relevant indices."""
    rng = np.random.RandomState(seed)
    X = rng.randn(n_samples, n_features)
    w = np.zeros(n_features)
    relevant = rng.randint(0, n_features, n_relevant)
    for i in relevant:
        w[i] = rng.normal(0.0, 1.0 / np.sqrt(weight_precision))
    noise = rng.normal(0.0, 1.0 / np.sqrt(noise_precision), n_samples)
    return X, X @ w + noise, w, np.unique(relevant)


# ------------------------------------------------------------------ models
def fit_ard(X, y, p: ARDParams):
    from sklearn.linear_model import ARDRegression

    return ARDRegression(compute_score=True, max_iter=p.max_iter, threshold_lambda=p.threshold_lambda).fit(X, y)


def recovered(coef: np.ndarray, relevant: np.ndarray) -> int:
    """How many truly relevant features are among the len(relevant) largest |weights|."""
    top = np.argsort(-np.abs(coef))[:len(relevant)]
    return int(len(set(top.tolist()) & set(relevant.tolist())))


def run_synthetic(p: ARDParams, run: Run) -> None:
    from sklearn.linear_model import LinearRegression

    run.progress(0, 3, phase="step")
    X, y, w, relevant = synthetic_data(p.n_samples, p.n_features, p.n_relevant, p.weight_precision,
                                       p.noise_precision, p.data_seed)
    run.text(f"{p.n_samples} x {p.n_features} Gaussian inputs, {len(relevant)} distinct relevant features "
             f"({', '.join(str(i) for i in relevant)})")
    run.progress(1, 3, phase="step")
    ard = fit_ard(X, y, p)
    run.progress(2, 3, phase="step")
    ols = LinearRegression().fit(X, y)
    run.progress(3, 3, phase="step")

    err_ard = float(np.linalg.norm(ard.coef_ - w))
    err_ols = float(np.linalg.norm(ols.coef_ - w))
    kept = np.flatnonzero(ard.coef_ != 0)
    hits = recovered(ard.coef_, relevant)
    for i, s in enumerate(ard.scores_):
        run.scalars(i + 1, {"log marginal likelihood": s})  # the curve panel draws it per iteration

    idx = list(range(p.n_features))
    run.figure("weights", "line", title="weights: truth, ARD and OLS", x=idx,
               series={"truth": w, "ARD": ard.coef_, "OLS": ols.coef_}, xlabel="feature", ylabel="weight")
    run.figure("ard-hist", "hist", title="histogram of the ARD weights (relevant features marked)",
               values=ard.coef_, bins=50, logy=True,
               marks=[{"x": float(ard.coef_[i]), "label": f"#{i}"} for i in relevant])
    run.table("relevant", ["feature", "true weight", "ARD", "OLS"],
              [[int(i), round(float(w[i]), 4), round(float(ard.coef_[i]), 4), round(float(ols.coef_[i]), 4)]
               for i in relevant], title="the relevant features")
    run.text(f"ARD: {hits} of {len(relevant)} relevant features among its {len(relevant)} largest weights; "
             f"{len(kept)} weights not pruned; weight error ||w_ARD - w|| = {err_ard:.3f} vs OLS {err_ols:.3f}")
    run.summary(weight_error_ard=err_ard, weight_error_ols=err_ols, relevant_recovered=hits,
                n_relevant=int(len(relevant)), ard_nonzero=int(len(kept)), ard_iterations=len(ard.scores_),
                log_marginal_likelihood=float(ard.scores_[-1]))


def run_diabetes(p: ARDParams, run: Run) -> None:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier
    from sklearn.preprocessing import StandardScaler

    from ..data.uci import PIMA_FEATURES, load_pima

    # --- data
    X, y = load_pima()
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=p.test_size, stratify=y, random_state=run.seed)
    scaler = StandardScaler().fit(X_tr)
    X_tr, X_te = scaler.transform(X_tr), scaler.transform(X_te)
    run.progress(0, 3, phase="step")

    # --- relevance ranking by ARD on the 0/1 target
    ard = fit_ard(X_tr, y_tr.astype(float), p)
    order = np.argsort(-np.abs(ard.coef_))
    selected = sorted(order[:p.n_select].tolist())
    run.figure("relevance", "bar", title="ARD: |weight| per input (standardised)",
               labels=[f"{i} {PIMA_FEATURES[i]}" for i in range(8)], values=np.abs(ard.coef_))
    run.table("ranking", ["rank", "dimension", "input", "ARD weight", "1/lambda (prior variance)"],
              [[k + 1, int(i), PIMA_FEATURES[i], round(float(ard.coef_[i]), 4), float(1.0 / ard.lambda_[i])]
               for k, i in enumerate(order)], title="relevance ranking (report: dimensions 0, 5, 6)")
    run.progress(1, 3, phase="step")

    # --- an MLP on all inputs vs on the selected ones
    accs = {}
    for step, (label, cols) in enumerate((("all inputs", list(range(8))), ("selected inputs", selected)), start=2):
        mlp = MLPClassifier(hidden_layer_sizes=tuple(p.mlp_hidden), solver=p.mlp_solver, activation=p.mlp_activation,
                            max_iter=p.mlp_max_iter, random_state=run.seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            mlp.fit(X_tr[:, cols], y_tr)
        accs[label] = float(mlp.score(X_te[:, cols], y_te))
        run.progress(step, 3, phase="step")
    run.figure("mlp-accuracy", "bar", title="MLP test accuracy: all inputs vs the ARD selection",
               labels=list(accs), values=list(accs.values()))
    run.text(f"selected dimensions {selected}; MLP test accuracy {accs['all inputs']:.3f} on all inputs, "
             f"{accs['selected inputs']:.3f} on the selection (report: 0.617 vs 0.708)")
    run.summary(ranking=" ".join(str(int(i)) for i in order), selected=" ".join(str(i) for i in selected),
                acc_all=accs["all inputs"], acc_selected=accs["selected inputs"])


def run(p: ARDParams, run: Run) -> None:
    if p.variant == "synthetic":
        run_synthetic(p, run)
    else:
        run_diabetes(p, run)


EXERCISE = Exercise(
    id="2.2-ard",
    title="Automatic relevance determination vs ordinary least squares",
    session=2,
    description=DESCRIPTION,
    Params=ARDParams,
    run=run,
    data=["pima"],
    needs=lambda p: ["pima"] if p.variant == "diabetes" else [],
    primary_metric="weight_error_ard",
)
