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
# # 01 · Soft targets and the distillation loss
#
# *Model compression for NLP, part 1 of 3.* Knowledge distillation (Hinton, Vinyals & Dean, 2015)
# trains a small **student** $p(\cdot)$ to imitate a large **teacher** $q(\cdot)$. In this notebook you
# implement the pieces of the lecture, each checked as you go:
#
# 1. the softened softmax $p_k = \exp(z_k/T) / \sum_i \exp(z_i/T)$ (2 points),
# 2. the distillation loss $\mathcal{L}_D$ with its $T^2$ factor (4 points),
# 3. the combined loss $\mathcal{L}_C = \alpha\mathcal{L} + (1-\alpha)\mathcal{L}_D$ (2 points),
# 4. a distillation training step — after finding the bug in the lecture's version (2 points).
#
# **How this works.** Replace each `raise NotImplementedError()` with your code. The cell after each
# function runs the *visible* tests; the grader also runs hidden tests in the same cell, whose
# failure messages name the likely mistake. Run `nbgrader validate` (or *Validate* in JupyterLab)
# before you submit. Everything runs on a laptop CPU in about a minute.
#
# Notation (the lecture's): $z$ are the student's logits and $p$ its distribution, $v$ the teacher's
# logits and $q$ its distribution, $T$ the temperature.

# %%
import torch
import torch.nn.functional as F

from compresslib.bigram import BigramTeacher
from compresslib.data import read_polarity_snippets
from compresslib.plots import plot_gradient_scaling, plot_softening

torch.manual_seed(0)

# %% [markdown]
# ## 1 · The softened softmax
#
# $$p_k = \frac{\exp(z_k / T)}{\sum_i \exp(z_i / T)}$$
#
# $T = 1$ is the ordinary softmax; a larger $T$ gives a *softer* distribution. Your function must be
# numerically stable: logits in the thousands must not overflow (softmax is unchanged when you subtract
# the same number from every logit). Use `torch` operations so gradients flow.

# %% nbgrader={"grade": false, "grade_id": "softmax_with_temperature", "locked": false, "schema_version": 3, "solution": true, "task": false}
def softmax_with_temperature(logits, temperature, dim=-1):
    """p_k = exp(z_k / T) / sum_i exp(z_i / T) along `dim`, for a tensor of logits and T > 0."""
    ### BEGIN SOLUTION
    scaled = logits / temperature
    scaled = scaled - scaled.max(dim=dim, keepdim=True).values
    exp = torch.exp(scaled)
    return exp / exp.sum(dim=dim, keepdim=True)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_softmax_with_temperature", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
### BEGIN HIDDEN TESTS
from compresslib.capture import capture; capture("01_soft_targets", "test_softmax_with_temperature", globals())
### END HIDDEN TESTS
z = torch.tensor([[2.0, 1.0, 0.1], [0.0, 0.0, 0.0]])
p = softmax_with_temperature(z, 1.0)
assert p.shape == z.shape, "the output must have the shape of the logits"
assert torch.allclose(p.sum(-1), torch.ones(2)), "each row must sum to 1"
assert torch.allclose(p, torch.softmax(z, -1)), "at T = 1 this is the ordinary softmax"
assert torch.allclose(softmax_with_temperature(z, 2.0), torch.softmax(z / 2, -1)), "at T = 2, divide the logits by 2"
assert torch.isfinite(softmax_with_temperature(torch.tensor([1000.0, 0.0]), 1.0)).all(), "overflow for large logits"
print("visible tests passed")

# %% [markdown]
# ### Dark knowledge
#
# The lecture shows BERT's distribution over the word after *"a beautiful"*: the wrong answers
# (*life, future, story*) carry information about how the teacher generalises — Hinton's "dark
# knowledge". A teacher with many classes shows it best, so here is one you can build in a second: a
# word-bigram language model of the 12,752 Rotten Tomatoes snippets (2,000 words). Watch the ranking
# of the runners-up appear as $T$ grows — and drown in the long tail when $T$ is too large.

# %% tags=["grader-skip"]
teacher = BigramTeacher.from_texts([text for text, _ in read_polarity_snippets()])
logits = teacher.logits("very")
temperatures = [1.0, 1.5, 2.0, 3.0]
probs = {T: softmax_with_temperature(logits, T).tolist() for T in temperatures}
for T in temperatures:
    top = teacher.top(torch.tensor(probs[T]), 5)
    print(f"T={T:<4g} top-5: " + ", ".join(f"{w} {p:.3f}" for w, p in top))
plot_softening(teacher.vocab, probs, title="Bigram teacher: next word after 'very'");

# %% [markdown]
# ## 2 · The distillation loss
#
# The lecture's word-level distillation loss is the **cross-entropy** of the student's distribution
# against the teacher's, here with both softened at temperature $T$ and averaged over the $N$ examples
# of the batch:
#
# $$\mathcal{L}_D = -\frac{T^2}{N}\sum_{n=1}^{N}\sum_{k} q_{n,k}\,\log p_{n,k},\qquad
#   p = \mathrm{softmax}(z/T),\; q = \mathrm{softmax}(v/T).$$
#
# Why $T^2$? The gradient with respect to a student logit is $\frac{1}{T}(p_k - q_k)$ per example, and
# for large $T$, $p_k - q_k \approx (z_k - v_k)/(KT)$ (zero-mean logits, $K$ classes), so without the
# factor the gradient shrinks as $1/T^2$. Multiplying by $T^2$ makes the soft gradient roughly
# **independent of $T$**, so the balance between the hard and the soft loss that $\alpha$ sets in
# section 3 keeps its meaning when you change $T$ ("the relative contributions of the hard and soft
# targets remain roughly unchanged", Hinton et al.). It does not make the two gradients equal in size:
# that is $\alpha$'s job. You will check the independence numerically below.
#
# **The high-temperature limit.** With the factor, the per-example gradient is $T(p_k - q_k) \to
# (z_k - v_k)/K$ as $T$ grows: the gradient of $\frac{1}{2K}\sum_k (z_k - v_k)^2$. Distillation at a
# high temperature becomes **matching the logits** with a squared error, the approach of Caruana and
# colleagues (the lecture's "see also"; Ba & Caruana, 2014, train their students by regressing the
# teacher's logits); Hinton et al. show it as a special case of distillation. (The lecture's slide writes the limit as $\frac{1}{T^2}(z_k - v_k)$,
# without the factor and without the $1/K$ of Hinton et al.'s equation.)
#
# Implement it for logits of shape `(N, K)`. Use `F.log_softmax` for $\log p$ (stable), and return a
# scalar tensor.

# %% nbgrader={"grade": false, "grade_id": "distillation_loss", "locked": false, "schema_version": 3, "solution": true, "task": false}
def distillation_loss(student_logits, teacher_logits, temperature):
    """L_D = -(T^2 / N) sum_n sum_k q_nk log p_nk, p = softmax(z / T), q = softmax(v / T)."""
    ### BEGIN SOLUTION
    log_p = F.log_softmax(student_logits / temperature, dim=-1)
    q = torch.softmax(teacher_logits / temperature, dim=-1)
    return -(q * log_p).sum(dim=-1).mean() * temperature**2
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_distillation_loss", "locked": true, "points": 4, "schema_version": 3, "solution": false, "task": false}
### BEGIN HIDDEN TESTS
from compresslib.capture import capture; capture("01_soft_targets", "test_distillation_loss", globals())
### END HIDDEN TESTS
z = torch.tensor([[1.0, 2.0, 3.0]])
v = torch.tensor([[3.0, 2.0, 1.0]])
loss = distillation_loss(z, v, 1.0)
assert loss.dim() == 0, "return a scalar (average over the examples)"
assert torch.isclose(loss, -(torch.softmax(v, -1) * torch.log_softmax(z, -1)).sum()), "at T = 1: -sum_k q_k log p_k"
assert distillation_loss(v, v, 2.0) > 0, "a cross-entropy is not zero for identical distributions (it equals T^2 H(q))"
by_hand = 2.0**2 * -(torch.softmax(v / 2, -1) * torch.log_softmax(z / 2, -1)).sum()
assert torch.isclose(distillation_loss(z, v, 2.0), by_hand), "at T = 2: soften both with T, then multiply by T^2 = 4"
zz, vv = torch.cat([z, v]), torch.cat([v, z])
assert torch.isclose(distillation_loss(zz, vv, 1.0), (distillation_loss(z, v, 1.0) + distillation_loss(v, z, 1.0)) / 2), \
    "average over the examples of the batch (not a sum)"
print("visible tests passed")

# %% [markdown]
# ### Check the gradient against the lecture
#
# With autograd, compare $\partial\mathcal{L}_D/\partial z$ with the closed form. Your loss includes
# $T^2$ and the mean over $N$ examples, so the lecture's $\frac{1}{T}(p - q)$ becomes
# $\frac{T^2}{N}\cdot\frac{1}{T}(p-q)$.

# %%
N, K, T = 4, 10, 3.0
z = torch.randn(N, K, requires_grad=True)
v = torch.randn(N, K)
distillation_loss(z, v, T).backward()
p, q = torch.softmax(z.detach() / T, -1), torch.softmax(v / T, -1)
closed_form = T**2 / N * (p - q) / T
print("max |autograd - closed form| =", (z.grad - closed_form).abs().max().item())

# %% [markdown]
# And the reason for $T^2$: the gradient's size as $T$ grows, with and without the factor
# (zero-mean logits, as in the lecture's approximation).

# %% tags=["grader-skip"]
z0 = torch.randn(N, K)
z0 = z0 - z0.mean(-1, keepdim=True)
v0 = v - v.mean(-1, keepdim=True)
temperatures = [1, 2, 4, 8, 16, 32]
with_t2, without_t2 = [], []
for T in temperatures:
    z = z0.clone().requires_grad_()
    distillation_loss(z, v0, T).backward()
    with_t2.append(z.grad.norm().item())
    without_t2.append(z.grad.norm().item() / T**2)
for T, a, b in zip(temperatures, with_t2, without_t2):
    print(f"T={T:>3}: |grad| with T^2 = {a:.4f}   without = {b:.2e}")
plot_gradient_scaling(temperatures, with_t2, without_t2);

# %% [markdown]
# And the high-temperature limit: with the factor, the gradient tends to $(z - v)/(KN)$, the gradient of
# the logit-matching loss $\frac{1}{2KN}\sum_{n,k} (z_{nk} - v_{nk})^2$ (same zero-mean logits).

# %% tags=["grader-skip"]
matching = (z0 - v0) / (K * N)
for T in (1, 4, 16, 64):
    z = z0.clone().requires_grad_()
    distillation_loss(z, v0, T).backward()
    print(f"T={T:>3}: max |grad - (z - v)/(KN)| = {(z.grad - matching).abs().max().item():.2e}")

# %% [markdown]
# ## 3 · The combined loss
#
# $$\mathcal{L}_C = \alpha\,\mathcal{L} + (1-\alpha)\,\mathcal{L}_D$$
#
# $\mathcal{L}$ is the ordinary cross-entropy with the ground-truth labels **at temperature 1**
# ("temperature is set to 1 for ground truth"); $\mathcal{L}_D$ is your distillation loss at
# temperature $T$. `labels` holds class indices of shape `(N,)`.
#
# The lecture's training step (section 4) has neither the $T^2$ factor nor this hard-label term: its
# `nn.KLDivLoss` on the softened distributions is $\mathcal{L}_D / T^2$ minus the teacher's entropy
# (which has no gradient), i.e. $\alpha = 0$ with a soft gradient that shrinks as $1/T^2$. Your step
# will use the combined loss instead.

# %% nbgrader={"grade": false, "grade_id": "combined_loss", "locked": false, "schema_version": 3, "solution": true, "task": false}
def combined_loss(student_logits, teacher_logits, labels, alpha, temperature):
    """L_C = alpha * CE(z, labels) + (1 - alpha) * L_D(z, v, T), the hard loss at T = 1."""
    ### BEGIN SOLUTION
    hard = F.cross_entropy(student_logits, labels)
    soft = distillation_loss(student_logits, teacher_logits, temperature)
    return alpha * hard + (1 - alpha) * soft
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_combined_loss", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
### BEGIN HIDDEN TESTS
from compresslib.capture import capture; capture("01_soft_targets", "test_combined_loss", globals())
### END HIDDEN TESTS
z = torch.tensor([[1.0, 2.0, 3.0], [0.5, 0.0, -1.0]])
v = torch.tensor([[3.0, 2.0, 1.0], [1.0, 1.0, 1.0]])
y = torch.tensor([2, 0])
assert torch.isclose(combined_loss(z, v, y, 1.0, 2.0), F.cross_entropy(z, y)), "alpha = 1: only the hard loss"
assert torch.isclose(combined_loss(z, v, y, 0.0, 2.0), distillation_loss(z, v, 2.0)), "alpha = 0: only L_D"
assert torch.isclose(combined_loss(z, v, y, 0.3, 2.0), 0.3 * F.cross_entropy(z, y) + 0.7 * distillation_loss(z, v, 2.0)), \
    "alpha = 0.3: 0.3 * (cross-entropy at T = 1) + 0.7 * L_D"
print("visible tests passed")

# %% [markdown]
# ## 4 · A distillation training step — and the lecture's bug
#
# Here is the lecture's training step, adapted to models called as `model(**inputs)`. Run it on two
# small models. What happens, and why?

# %%
import torch.nn as nn


def lecture_kd_step(teacher, student, temperature, inputs, optimizer):
    KD_loss = nn.KLDivLoss(reduction="batchmean")
    teacher.eval()
    student.train()
    with torch.no_grad():
        logits_t = teacher(**inputs)
        logits_s = student(**inputs)
    loss = KD_loss(input=F.log_softmax(logits_s / temperature, dim=-1),
                   target=F.softmax(logits_t / temperature, dim=-1))
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()


class Small(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(6, width), nn.ReLU(), nn.Dropout(0.3), nn.Linear(width, 4))

    def forward(self, features):
        return self.net(features)


demo_teacher, demo_student = Small(64), Small(8)
demo_batch = {"features": torch.randn(16, 6), "labels": torch.randint(0, 4, (16,))}
try:
    lecture_kd_step(demo_teacher, demo_student, 2.0, {"features": demo_batch["features"]},
                    torch.optim.SGD(demo_student.parameters(), lr=0.1))
except RuntimeError as error:
    print("RuntimeError:", error)

# %% [markdown]
# **Your answer.** What happens, and why? Which lines of `lecture_kd_step` would you change? Write it
# here (double-click this cell to edit it) before you open the next cell.
#
# *...*

# %% [markdown]
# <details><summary><b>Our answer</b> (click to open it, once you have written yours)</summary>
#
# Both forward passes run under `torch.no_grad()`, so the student's logits carry no graph and
# `loss.backward()` has nothing to differentiate: the student can never learn. Only the **teacher**
# belongs under `no_grad` (it is a fixed target), in `eval()` mode so that dropout does not add noise to
# the soft targets.
#
# </details>

# %% [markdown]
# Write the corrected step with your `combined_loss`. `batch` is a dict holding `"labels"` and the
# model's keyword inputs (here `"features"`; for BERT `"input_ids"`, `"attention_mask"`, ...). Zero the
# gradients, backpropagate, take one optimizer step, and return the loss as a float.

# %% nbgrader={"grade": false, "grade_id": "kd_step", "locked": false, "schema_version": 3, "solution": true, "task": false}
def kd_step(teacher, student, batch, optimizer, *, temperature, alpha):
    """One step on L_C: teacher in eval mode under no_grad, student in train mode with autograd."""
    inputs = {key: value for key, value in batch.items() if key != "labels"}
    ### BEGIN SOLUTION
    teacher.eval()
    with torch.no_grad():
        teacher_logits = teacher(**inputs)
    student.train()
    student_logits = student(**inputs)
    loss = combined_loss(student_logits, teacher_logits, batch["labels"], alpha, temperature)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_kd_step", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
### BEGIN HIDDEN TESTS
from compresslib.capture import capture; capture("01_soft_targets", "test_kd_step", globals())
### END HIDDEN TESTS
optimizer = torch.optim.SGD(demo_student.parameters(), lr=0.1)
before = [p.detach().clone() for p in demo_student.parameters()]
loss = kd_step(demo_teacher, demo_student, demo_batch, optimizer, temperature=2.0, alpha=0.5)
assert isinstance(loss, float), "return the loss as a Python float (loss.item())"
assert any(not torch.equal(a, b) for a, b in zip(before, demo_student.parameters())), "the student did not change"
assert all(p.grad is None for p in demo_teacher.parameters()), "the teacher must get no gradient"
assert not demo_teacher.training, "the teacher must be in eval mode"
print("visible tests passed")

# %% [markdown]
# ### Does it learn?
#
# Fifty steps of your `kd_step` with $T = 2$, $\alpha = 0.5$: the combined loss should fall.

# %% tags=["grader-skip"]
optimizer = torch.optim.Adam(demo_student.parameters(), lr=1e-2)
losses = [kd_step(demo_teacher, demo_student, demo_batch, optimizer, temperature=2.0, alpha=0.5) for _ in range(50)]
print(f"loss: first step {losses[0]:.3f}, last step {losses[-1]:.3f}")

# %% [markdown]
# ## Where this goes next
#
# `compresslib` holds the reference versions of these functions; in your kit they stay locked until this
# notebook's deadline, then your course unlocks them (`compresslib.distillation_loss` also handles
# token-level logits `(batch, seq, vocab)` with a padding mask, as in word-level distillation of a
# language model). Notebook 02 uses them to distil a 6-layer BERT into a 3-layer student.

# %% [markdown]
# ## What the evidence shows
#
# Does distillation help on a real task? On two-class sentiment the soft target is one number per
# snippet, so the question the reference run asks is the one where soft targets have something to add:
# few labels, many unlabelled snippets the teacher can label softly (the lecture's *transfer set*).
#
# <!-- results:distill:01 -->
# From the reference run (`python -m compresslib.runs distill --profile cpu --threads 1`, its numbers in `docs/results/distill/results.json`; this paragraph is generated from that file):
#
# * **Label-scarce distillation.** With 250 labels, the student that also learns from the teacher's soft targets (T = 1, alpha = 0.25, chosen on validation data) on 2,048 unlabelled training snippets beats the student trained on the labels alone: +3.0 [+1.4, +4.6] points (mean, 95% CI), 71.1% against 68.1% over 5 seeds (paired t-test p = 0.0062, McNemar p < 0.001 on the pooled predictions).
# * **More labels.** KD minus hard labels, paired by seed: all labels: +2.6 [-0.4, +5.6] points (5 seeds, does not hold).
# * **Soft targets alone** (no label at all, alpha = 0): 69.1% against 68.1% with 250 labels and no teacher (+1.1 [-0.6, +2.8] points, does not hold).
# * **Two classes.** Each soft target here is one number, the teacher's probability of `fresh`: what it adds to a hard label is the teacher's confidence, not a ranking of wrong classes (the dark knowledge of the lecture's many-class examples). In the label-scarce setting it also covers snippets that have no label at all.
# <!-- /results:distill:01 -->
