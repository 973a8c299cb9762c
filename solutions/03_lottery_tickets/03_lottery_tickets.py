# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 03 · Finding a lottery ticket
#
# *Model compression for NLP, part 3 of 3.* **The Lottery Ticket Hypothesis** (Frankle & Carbin, 2019):
# *a randomly-initialized, dense neural network contains a subnetwork that is initialized such that —
# when trained in isolation — it can match the test accuracy of the original network after training for
# at most the same number of iterations.* Chen et al. (2020) found such subnetworks in pre-trained BERT.
# In this notebook you implement the procedure that finds them, each piece checked as you go:
#
# 1. the magnitude mask at an exact sparsity, ties broken deterministically (2 points),
# 2. pruning a fraction of the *remaining* weights, for the next round (2 points),
# 3. training with the mask kept applied after every optimizer step (3 points),
# 4. one round of iterative magnitude pruning (IMP) with rewinding to $\theta_0$ (3 points),
#
# and then you run a small sparsity sweep on the top layers of the pre-trained MiniLM: IMP against
# random pruning.
#
# **How this works.** Replace each `raise NotImplementedError()` with your code. The cell after each
# function runs the *visible* tests; the grader also runs hidden tests in the same cell, whose
# failure messages name the likely mistake. Run `nbgrader validate` before you submit.
#
# **Conventions.** Weights and masks are dicts `{name: tensor}`; a mask holds 1 where the weight is
# kept and 0 where it is pruned, with the weight's shape. The *sparsity* is the fraction of zeros.

# %%
import torch
import torch.nn as nn
import torch.nn.functional as F

from compresslib.profiles import notebook_profile

torch.manual_seed(0)
PROFILE = notebook_profile()  # quick | cpu | gpu ("quick": CI's setting, a tiny sweep)

# %% [markdown]
# ## 1 · The magnitude mask
#
# The lecture's step 3: *prune $p\%$ of the parameters with the smallest magnitude, creating a mask
# $m$.* With $n$ weights and sparsity $s$, prune exactly $k = \mathrm{round}(s\,n)$ of them: those with
# the smallest $|w|$, ranked over **all** the tensors together (global pruning, as in the BERT-ticket
# paper). Rank by magnitude, not by signed value — a weight of $-0.9$ matters more than one of $0.1$.
#
# Ties need a rule. A threshold $t$ (the $k$-th smallest $|w|$) with `|w| > t` prunes every weight tied
# at $t$ (too many when ties straddle the cut); `|w| >= t` prunes none of them (too few). Prune
# exactly $k$, and among equal magnitudes the **earliest** positions first (dict order, then flat
# index). A *stable* sort does exactly that: `torch.sort(scores, stable=True).indices[:k]` are the
# positions to prune. Return float masks of the weights' shapes; do not modify the weights.

# %% nbgrader={"grade": false, "grade_id": "magnitude_mask", "locked": false, "schema_version": 3, "solution": true, "task": false}
def magnitude_mask(weights, sparsity):
    """{name: 0/1 mask} pruning exactly k = round(sparsity * n) of the n weights with the smallest |w|,
    ranked over all tensors together; ties broken by position (earliest pruned first)."""
    ### BEGIN SOLUTION
    scores = torch.cat([w.detach().abs().flatten() for w in weights.values()])
    k = int(round(sparsity * scores.numel()))
    keep = torch.ones_like(scores)
    keep[torch.sort(scores, stable=True).indices[:k]] = 0.0
    masks, offset = {}, 0
    for name, w in weights.items():
        masks[name] = keep[offset : offset + w.numel()].view(w.shape).clone()
        offset += w.numel()
    return masks
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_magnitude_mask", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
### BEGIN HIDDEN TESTS
from compresslib.capture import capture; capture("03_lottery_tickets", "test_magnitude_mask", globals())
### END HIDDEN TESTS
w = {"a": torch.tensor([[0.4, -0.05], [0.3, -0.2]]), "b": torch.tensor([0.01, -0.9, 0.6, 0.1])}
m = magnitude_mask(w, 0.5)
assert set(m) == {"a", "b"} and m["a"].shape == (2, 2) and m["b"].shape == (4,), "one mask per tensor, same shape"
assert sum(int((x == 0).sum()) for x in m.values()) == 4, "sparsity 0.5 of 8 weights: prune exactly 4"
assert m["b"][1] == 1, "-0.9 is the largest magnitude: rank by |w|, not by signed value"
assert m["a"].tolist() == [[1, 0], [1, 0]] and m["b"].tolist() == [0, 1, 1, 0], "prune the 4 smallest |w| overall"
print("visible tests passed")

# %% [markdown]
# ## 2 · Prune a fraction of the remaining weights
#
# IMP prunes $p\%$ *of the weights still there* in each round, so after $r$ rounds the sparsity is
# $1-(1-p)^r$ (50%, 75%, 87.5%, ... for $p = 50\%$). Pruned weights are zero after training, so
# "the $p\%$ smallest of all weights" would just pick the zeros again and the sparsity would not grow.
#
# Given the trained `weights`, the `previous` mask and `fraction` $p$: keep every pruned weight pruned,
# and prune $\mathrm{round}(p \cdot n_\text{remaining})$ more, the smallest $|w|$ among the remaining
# ones (globally, ties by position as before). Masks only shrink. Return a new mask: leave `previous`
# and the weights as they are. (Hint: your `magnitude_mask` does the ranking: zero the pruned weights,
# `w * previous`, so that they rank first, and ask for the total sparsity $k/n$ you want after this
# round.)

# %% nbgrader={"grade": false, "grade_id": "prune_remaining", "locked": false, "schema_version": 3, "solution": true, "task": false}
def prune_remaining(weights, fraction, previous):
    """{name: 0/1 mask}: `previous` with round(fraction * n_remaining) more of its kept weights pruned,
    those with the smallest |w| over all tensors (ties: earliest first)."""
    ### BEGIN SOLUTION
    n = sum(w.numel() for w in weights.values())
    n_pruned = sum(int((previous[name] == 0).sum()) for name in weights)
    k = n_pruned + int(round(fraction * (n - n_pruned)))
    # a pruned weight scores |w * 0| = 0, the lowest there is: the k smallest include it, so it stays pruned
    return magnitude_mask({name: w.detach() * previous[name] for name, w in weights.items()}, k / n)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_prune_remaining", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
### BEGIN HIDDEN TESTS
from compresslib.capture import capture; capture("03_lottery_tickets", "test_prune_remaining", globals())
### END HIDDEN TESTS
previous = {"w": torch.tensor([1.0, 1, 0, 1, 0, 1, 1, 0])}
trained = {"w": torch.tensor([0.5, 0.2, 0.0, 0.4, 0.0, 0.1, 0.3, 0.0])}
m = prune_remaining(trained, 0.4, previous)
assert all(m["w"][i] == 0 for i in (2, 4, 7)), "a pruned weight stays pruned (masks only shrink)"
assert int((m["w"] == 0).sum()) > 3, "the sparsity must grow: prune a fraction of the *remaining* weights"
newly = [trained["w"][i].abs() for i in range(8) if m["w"][i] == 0 and previous["w"][i] == 1]
kept = [trained["w"][i].abs() for i in range(8) if m["w"][i] == 1]
assert max(newly) <= min(kept), "prune the smallest |w| among the remaining weights"
print("pruned:", int((m["w"] == 0).sum()), "of 8 (expected 3 + round(0.4 * 5) = 5)")
print("visible tests passed")

# %% [markdown]
# ## 3 · Keep the mask applied during training
#
# A subnetwork $f(x; m \odot \theta)$ is trained with its pruned weights held at exactly zero. Zeroing
# them once before training is not enough: their gradients are not zero, and AdamW's momentum and
# weight decay move them too, so after one step they are back. Re-apply the mask **after every
# optimizer step** (`compresslib.prune.MaskEnforcer` also zeroes the pruned gradients with a hook).
#
# Write `apply_mask(model, mask)` (in place, $w \leftarrow m \odot w$ for every parameter named in the
# mask, under `torch.no_grad()`; the mask itself is left as it is), and `train_with_mask`: apply the
# mask, put the model in train mode, then for each `(x, y)` in `batches` take one step of the given
# `optimizer` on `F.cross_entropy(model(x), y)` and re-apply the mask.

# %% nbgrader={"grade": false, "grade_id": "train_with_mask", "locked": false, "schema_version": 3, "solution": true, "task": false}
def apply_mask(model, mask):
    """w <- m * w in place for each parameter of `model` named in `mask`; returns the model."""
    ### BEGIN SOLUTION
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, m in mask.items():
            params[name].mul_(m.to(params[name].dtype))
    return model
    ### END SOLUTION


def train_with_mask(model, mask, optimizer, batches):
    """One optimizer step on cross_entropy(model(x), y) per (x, y) in `batches`, the mask applied before
    training and after every step, so pruned weights stay exactly 0."""
    ### BEGIN SOLUTION
    apply_mask(model, mask)
    model.train()
    for x, y in batches:
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
        apply_mask(model, mask)
    return model
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_train_with_mask", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
### BEGIN HIDDEN TESTS
from compresslib.capture import capture; capture("03_lottery_tickets", "test_train_with_mask", globals())
### END HIDDEN TESTS
net = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 2))
mask = {"0.weight": (torch.rand(8, 3) > 0.5).float()}
opt = torch.optim.AdamW(net.parameters(), lr=0.1, weight_decay=0.1)
xs, ys = torch.randn(10, 3), torch.randint(0, 2, (10,))
before = net[2].weight.detach().clone()
train_with_mask(net, mask, opt, [(xs, ys)] * 4)
assert torch.all(net[0].weight[mask["0.weight"] == 0] == 0), "pruned weights must be exactly 0 after training"
assert not torch.equal(net[2].weight, before), "the model did not train"
print("visible tests passed")

# %% [markdown]
# ## 4 · One round of IMP with rewinding
#
# The lecture's procedure, for a network $f(x;\theta)$:
#
# 1. initialise $f(x;\theta_0)$ — for BERT, $\theta_0$ are the **pre-trained** weights;
# 2. train for $j$ iterations, reaching $\theta_j$;
# 3. prune $p\%$ of the (remaining) parameters of $\theta_j$ with the smallest magnitude, creating a mask $m$;
# 4. reset the remaining parameters to their values in $\theta_0$, creating the ticket $f(x; m \odot \theta_0)$;
#
# then repeat 2-4 for $n$ rounds. Write one round: `model` holds the current ticket, `mask` its mask
# (all ones in the first round), `train(model, mask)` trains it in place with the mask kept applied.
# Train; prune `fraction` of the remaining prunable weights (those named in `mask`) of the **trained**
# model; then rewind: load $\theta_0$ (`theta0` is a `state_dict`; every parameter goes back, biases
# included) and apply the new mask, so the pruned weights are 0 and the survivors are at $\theta_0$ —
# not at their trained values. Return the new mask. Do not modify `theta0`.
#
# **Why rewind?** The lottery-ticket hypothesis is a claim about the *start* of training: a sparse
# subnetwork, trained in isolation from the same initial values, does as well as the full network.
# Keeping the survivors' trained values would test something else, whether a *trained* network can be
# pruned (it can: that is ordinary pruning, "standard pruning" in Table 3 below). Rewinding to
# $\theta_0$ asks whether the mask *together with* its initial values is the ticket, and the baselines
# take the pair apart: the same mask on other values ($\theta'_0$, $\theta''_0$) and another mask on the
# same values (random pruning). For networks trained from scratch, rewinding to $\theta_0$ fails beyond
# small models, and rewinding to the weights after a few percent of training works (Frankle et al.,
# 2020); for BERT, $\theta_0$ is already the pre-trained point. Comparing rewind points fairly means an
# equal budget: a rewind to step $k$ continues the original schedule for the remaining steps, so every
# ticket has trained as long from $\theta_0$ (the reference run does this).

# %% nbgrader={"grade": false, "grade_id": "imp_round", "locked": false, "schema_version": 3, "solution": true, "task": false}
def imp_round(model, theta0, mask, fraction, train):
    """Train under `mask`, prune `fraction` of the remaining weights by magnitude, rewind to m * theta0;
    return the new mask."""
    ### BEGIN SOLUTION
    train(model, mask)
    params = dict(model.named_parameters())
    new_mask = prune_remaining({name: params[name].detach() for name in mask}, fraction, mask)
    model.load_state_dict(theta0)
    apply_mask(model, new_mask)
    return new_mask
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_imp_round", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
### BEGIN HIDDEN TESTS
from compresslib.capture import capture; capture("03_lottery_tickets", "test_imp_round", globals())
### END HIDDEN TESTS
net = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 2))
xs, ys = torch.randn(10, 3), torch.randint(0, 2, (10,))
start = {k: v.clone() for k, v in net.state_dict().items()}
ones = {"0.weight": torch.ones(8, 3), "2.weight": torch.ones(2, 8)}
opt_steps = []


def demo_train(model, mask):
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    for _ in range(3):
        opt.zero_grad()
        F.cross_entropy(model(xs), ys).backward()
        opt.step()
        opt_steps.append(1)


new = imp_round(net, start, ones, 0.5, demo_train)
assert opt_steps, "imp_round must call train(model, mask)"
assert 0 < sum(int((m == 0).sum()) for m in new.values()) < 40, "prune some (about half) of the 40 prunable weights"
for name, m in new.items():
    assert torch.equal(net.state_dict()[name], start[name] * m), f"{name}: after rewinding the model holds m * theta0"
assert torch.equal(net[0].bias, start["0.bias"]), "the biases go back to theta0 too"
print("visible tests passed")

# %% [markdown]
# ## 5 · A sparsity sweep: IMP against random pruning
#
# Now the question of the BERT-ticket paper: do IMP's masks on the pre-trained weights beat a random
# mask of the same sparsity? To keep the sweep to about two minutes on a laptop CPU we prune and
# fine-tune only the **top three** of MiniLM's six layers and the classifier head: the three layers
# below are frozen and their outputs cached once (`compresslib.top_layers`). The prunable weights are
# those layers' linear weights (query, key, value, attention output, FFN in and out), as in Chen et al.;
# $\theta_0$ are the pre-trained weights (the classifier head is new, initialised from a seed). Each
# fine-tuning is one pass over 1,280 training snippets (80 steps of 16).
#
# Each round fine-tunes with `compresslib.training.fit`, with your `apply_mask` as its `after_step`
# callback; your `imp_round` does the rest. The random-pruning baseline $m_{RP}$ prunes as many weights,
# chosen at random: your `magnitude_mask` ranking uniform random scores instead of $|w|$ (what
# `compresslib.prune.random_mask` does), trained from $m_{RP} \odot \theta_0$ in the same way. This is
# one seed on subsets, so expect noise of a few points. The reference run
# (`python -m compresslib.runs tickets --profile cpu`, results at the end of this notebook) asks the
# same questions with Chen et al.'s settings: the prunable set includes the pooler, the classifier keeps
# its trained weights when the body is rewound (this notebook's `imp_round` rewinds everything), five
# seeds, the whole test split, the $\theta'_0$ and $\theta''_0$ baselines, rewinding at equal budgets and
# paired tests. (Grading skips this section: its cells are tagged `grader-skip`.)

# %% tags=["grader-skip"]
from compresslib.top_layers import TopLayersTask, plot_sparsity_sweep

if PROFILE == "quick":  # a few seconds
    settings = dict(train_examples=32, eval_examples=32, top_layers=1, batch_size=16, epochs=1, lr=1e-3)
    rounds, fraction = 1, 0.5
else:  # cpu, gpu: about two minutes on a laptop CPU (the top-layers task runs on the CPU)
    settings = dict(train_examples=1280, eval_examples=512, top_layers=3, batch_size=16, epochs=1, lr=2e-4)
    rounds, fraction = 2, 0.5
task = TopLayersTask.build(**settings)
model = task.theta0()
theta0 = {k: v.clone() for k, v in model.state_dict().items()}
names = task.prunable_names(model)
print(f"{len(names)} prunable weight tensors, {sum(model.get_parameter(n).numel() for n in names):,} weights; "
      f"{len(task.train_batches)} training batches per fine-tune")


def train_under_mask(model, mask):
    torch.manual_seed(0)
    task.train(model, after_step=lambda m: apply_mask(m, mask), desc="fine-tuning under the mask")


# %% tags=["grader-skip"]
def sparsity_of(mask):
    return 1 - sum(float(m.sum()) for m in mask.values()) / sum(m.numel() for m in mask.values())


accuracies = []


def train_and_evaluate(model, mask):  # the `train` that imp_round calls: fine-tune, then record the accuracy
    train_under_mask(model, mask)
    accuracies.append(task.accuracy(model))


mask = {n: torch.ones_like(model.get_parameter(n)) for n in names}
sparsities = []
for r in range(rounds):
    sparsities.append(sparsity_of(mask))
    mask = imp_round(model, theta0, mask, fraction, train_and_evaluate)
sparsities.append(sparsity_of(mask))
train_and_evaluate(model, mask)  # the last ticket: train and evaluate it
for r, (s, a) in enumerate(zip(sparsities, accuracies)):
    print(f"IMP round {r}: sparsity {s:.3f}  accuracy {a:.3f}" + ("  (the full model)" if r == 0 else ""))
full_accuracy = accuracies[0]
imp_curve = (sparsities, accuracies)

# %% [markdown]
# Random pruning at the same sparsities, from the same $\theta_0$:

# %% tags=["grader-skip"]
def random_mask(model, sparsity, seed):
    """m_RP: as many weights pruned as at this sparsity, chosen by uniform random scores."""
    generator = torch.Generator().manual_seed(seed)
    return magnitude_mask({n: torch.rand(model.get_parameter(n).shape, generator=generator) for n in names}, sparsity)


rp_curve = ([0.0], [full_accuracy])
for sparsity in sparsities[1:]:
    rp_model = task.theta0()
    rp = random_mask(rp_model, sparsity, seed=1)
    apply_mask(rp_model, rp)
    train_under_mask(rp_model, rp)
    rp_curve[0].append(sparsity)
    rp_curve[1].append(task.accuracy(rp_model))
    print(f"random pruning: sparsity {sparsity:.3f}  accuracy {rp_curve[1][-1]:.3f}")
plot_sparsity_sweep({"IMP on θ0 (rewound)": imp_curve, "random pruning on θ0": rp_curve},
                    full_accuracy=full_accuracy, majority=task.majority_accuracy(),
                    title="Top three MiniLM layers: accuracy vs sparsity");

# %% [markdown]
# ## What the BERT-ticket paper found
#
# Chen et al. (2020), Table 2: performance at the highest sparsity for which IMP finds a **winning
# ticket** — a subnetwork within one standard deviation of the unpruned BERT (mean ± std over five
# runs) — and, at the same sparsity, random pruning (RP), the IMP mask on random weights $\theta'_0$, and
# on pre-trained weights shuffled within each layer $\theta''_0$:
#
# | Dataset | MNLI | QQP | STS-B | WNLI | QNLI | MRPC | RTE | SST-2 | CoLA | SQuAD | MLM |
# |---|---|---|---|---|---|---|---|---|---|---|---|
# | Sparsity | 70% | 90% | 50% | 90% | 70% | 50% | 60% | 60% | 50% | 40% | 70% |
# | Full BERT$_{BASE}$ | 82.4 ± 0.5 | 90.2 ± 0.5 | 88.4 ± 0.3 | 54.9 ± 1.2 | 89.1 ± 1.0 | 85.2 ± 0.1 | 66.2 ± 3.6 | 92.1 ± 0.1 | 54.5 ± 0.4 | 88.1 ± 0.6 | 63.5 ± 0.1 |
# | $f(x, m_{IMP} \odot \theta_0)$ | 82.6 ± 0.2 | 90.0 ± 0.2 | 88.2 ± 0.2 | 54.9 ± 1.2 | 88.9 ± 0.4 | 84.9 ± 0.4 | 66.0 ± 2.4 | 91.9 ± 0.5 | 53.8 ± 0.9 | 87.7 ± 0.5 | 63.2 ± 0.3 |
# | $f(x, m_{RP} \odot \theta_0)$ | 67.5 | 76.3 | 21.0 | 53.5 | 61.9 | 69.6 | 56.0 | 83.1 | 9.6 | 31.8 | 32.3 |
# | $f(x, m_{IMP} \odot \theta'_0)$ | 61.0 | 77.0 | 9.2 | 53.5 | 60.5 | 68.4 | 54.5 | 80.2 | 0.0 | 18.6 | 14.4 |
# | $f(x, m_{IMP} \odot \theta''_0)$ | 70.1 | 79.2 | 19.6 | 53.3 | 62.0 | 69.6 | 52.7 | 82.6 | 4.0 | 24.2 | 42.3 |
#
# Both the mask and the pre-trained values matter: a random mask on $\theta_0$, or IMP's mask on random
# or shuffled weights, falls far behind. Table 3 asks *where* to rewind to: $\theta_0$ ("rewind 0%"),
# the weights after 5-50% of training, or no rewinding at all (standard pruning: keep fine-tuning the
# final weights). For pre-trained BERT the differences are small — the pre-trained weights are
# already a good starting point:
#
# | Dataset | MNLI | QQP | STS-B | WNLI | QNLI | MRPC | RTE | SST-2 | CoLA | SQuAD | MLM |
# |---|---|---|---|---|---|---|---|---|---|---|---|
# | Full BERT$_{BASE}$ | 82.39 | 90.19 | 88.44 | 54.93 | 89.14 | 85.23 | 66.16 | 92.12 | 54.51 | 88.06 | 63.48 |
# | Rewind 0% ($\theta_0$) | 82.45 | 89.20 | 88.12 | 54.93 | 88.05 | 84.07 | 66.06 | 91.74 | 52.05 | 87.74 | 63.07 |
# | Rewind 5% | 82.99 | 88.98 | 88.05 | 54.93 | 88.85 | 83.82 | 62.09 | 92.43 | 53.38 | 87.78 | 63.18 |
# | Rewind 10% | 82.93 | 89.08 | 88.11 | 54.93 | 89.02 | 84.07 | 62.09 | 92.66 | 52.61 | 87.77 | 63.49 |
# | Rewind 20% | 83.08 | 89.21 | 88.28 | 55.75 | 88.87 | 85.78 | 61.73 | 92.89 | 52.02 | 87.36 | 63.82 |
# | Rewind 50% | 82.94 | 89.54 | 88.41 | 53.32 | 88.72 | 85.54 | 62.45 | 92.66 | 52.20 | 87.26 | 64.21 |
# | Standard pruning | 82.11 | 89.97 | 88.51 | 52.82 | 89.88 | 85.78 | 62.95 | 90.02 | 52.00 | 87.12 | 63.77 |
#
# **A caution.** An unstructured mask zeroes weights but keeps the dense matrices, so on dense kernels
# the pruned model is neither faster nor smaller. Sparse storage and kernels (CSR: the kept values and
# their column indices) pay for their indices and irregular memory access, and win only at high
# sparsity; semi-structured 2:4 sparsity runs on the sparse tensor cores of recent GPUs only; removing
# whole attention heads or neurons shrinks the dense matrices themselves. The reference run times the
# full six-layer model on 2 CPU cores, interleaved: a 90%-sparse mask runs at 0.95x the dense speed on
# dense kernels and 0.74x on CSR kernels (stored in 0.62x the bytes; at 50% sparsity CSR is 0.14x),
# while removing the half of the 72 heads with the lowest importance runs 1.27x faster, at 70.5%
# accuracy before any retraining (72.6% dense, first seed).
#
# ## What the evidence shows
#
# The `cpu` reference run (`python -m compresslib.runs tickets --profile cpu`; tables and claims in the
# README and `docs/results/tickets/`) trains MiniLM's top layer, its pooler and the classifier on the
# cached output of the five frozen layers below: 48 steps at lr 1e-3 (both chosen on validation), five
# seeds, all 2,551 test snippets, on which the majority class scores 57.8%.
#
# - **Every arm learns at moderate sparsity**: the full model scores 71.9 ± 1.1%, and random pruning,
#   $\theta'_0$ and $\theta''_0$ all score about 72% at 36% sparsity, with no difference from IMP there.
# - **Winning tickets up to 74% sparsity** by Chen et al.'s criterion (IMP 72.4 ± 0.8%). At 59% and 74%
#   the mask on re-initialised or shuffled weights falls to the majority class or near it, and IMP beats
#   them by 10 to 15 points (95% CIs above 0, paired over seeds; McNemar p < 0.001): the mask alone is
#   not the ticket. Random pruning holds on longer: IMP's lead at 74% is +4.5 points (95% CI -0.2 to
#   +9.1, p = 0.055), not shown beyond chance.
# - **Pre-training is not what the trained layer brings here**: with every weight of that one layer
#   re-drawn (no mask), the model scores 72.9 ± 0.5%, as well as the pre-trained one (-1.1 points, CI
#   -2.4 to +0.3); the five frozen pre-trained layers below carry the task. So this run cannot show Chen
#   et al.'s large gap between IMP and its baselines at the winning sparsity, which comes from pruning
#   and fine-tuning all of BERT.
# - **Past 74%, IMP collapses to the majority class** (79% and 83%): MiniLM's pooler weights are four to
#   six times smaller than the encoder's (mean $|w|$ 0.007 against 0.03-0.04), so global magnitude
#   pruning over Chen et al.'s prunable set removes the pooler first (67% of it at 20% overall, 99.98%
#   at 74%, all of it at 79%), and the classifier is cut off. Global ranking assumes comparable magnitudes across
#   matrices; per-layer pruning, or leaving the pooler out (the `encoder` set), avoids this.
# - **Rewinding at equal budgets** (36% sparsity): rewinding to 10% or 50% of training, and standard
#   pruning, differ from rewind 0% by -0.3 to +0.2 points (71.8-72.3%), none beyond chance, as in
#   Chen et al.'s Table 3 for pre-trained BERT.
