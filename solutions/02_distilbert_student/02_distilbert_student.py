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
# # 02 · Building and distilling a half-depth BERT student
#
# *Model compression for NLP, part 2 of 3.* DistilBERT (Sanh et al., 2019) is the lecture's central
# result: a student with **half of BERT's layers**, initialised by **taking one teacher layer out of
# two** of the *pre-trained* BERT, keeps about 97% of BERT's GLUE score with about 60% of its inference
# time. That 97% comes from distillation **during pre-training**: the student learned BERT's soft
# targets over the vocabulary (the masked-word distributions of the lecture's "a beautiful [MASK]" slide)
# on BERT's whole pre-training corpus, together with the masked-LM and a hidden-state cosine loss.
# Distilling once more on the task, with the soft targets of notebook 01 from a fine-tuned teacher, added
# about one point on top (SQuAD F1 85.1 -> 86.2, the lecture's slide). In this notebook you build the
# student and distil it on the task:
#
# 1. choose the teacher layers the student keeps (1 point),
# 2. build the student by copying the teacher's embeddings, chosen layers and task head (4 points),
# 3. compute the teacher's soft targets the right way: eval mode, no gradients (2 points),
# 4. write the distillation step on BERT batches with cached teacher logits (3 points),
#
# and then compare your student with the teacher and with the same student trained without the teacher,
# in the lecture's table form (parameters, inference time, accuracy, % of the teacher).
#
# **How this works.** Replace each `raise NotImplementedError()` with your code. The cell after each
# function runs the *visible* tests; the grader also runs hidden tests there, on tiny BERTs of several
# depths, whose failure messages name the likely mistake. The graded cells run in seconds; the comparison
# at the end (not graded) trains small models on a small subset of the data, a few minutes on a laptop CPU.

# %%
import copy
import os
import time
from pathlib import Path

import torch
import torch.nn as nn
from transformers import BertConfig, BertForSequenceClassification

from compresslib import combined_loss

torch.manual_seed(0)

# A toy teacher for the visible tests: a randomly initialised 4-layer BERT (the hidden tests use
# similar ones, of several depths, with recorded weights).
toy_teacher = BertForSequenceClassification(BertConfig(
    vocab_size=50, hidden_size=16, num_hidden_layers=4, num_attention_heads=2, intermediate_size=32,
    max_position_embeddings=32, num_labels=2)).eval()
toy_batch = {"input_ids": torch.randint(1, 50, (3, 7)), "attention_mask": torch.ones(3, 7, dtype=torch.long),
             "labels": torch.tensor([0, 1, 1])}

# %% [markdown]
# ## 1 · Which teacher layers does the student keep?
#
# DistilBERT halves the depth and initialises the student "by taking one layer out of two": student
# layer $i$ starts as teacher layer $2i$. For a 6-layer teacher (our MiniLM) that is layers `[0, 2, 4]`;
# for BERT-base's 12 layers, `[0, 2, 4, 6, 8, 10]`. (DistilBERT's released checkpoint actually used
# `[0, 2, 4, 7, 9, 11]`, keeping the top layer.) Whether a spread-out choice beats simply keeping the
# bottom half is an empirical question, not a rule: Sajjad et al. (2020, "On the effect of dropping layers
# of pre-trained transformer models") found that dropping the *top* layers, i.e. keeping the bottom half,
# works as well as or better than the other strategies they tried before fine-tuning. The reference run
# measures both on our data with `python -m compresslib.runs distill --layer-arms` (the `gpu` profile
# does; the `cpu` profile leaves them out to fit its budget).
#
# Return the list of teacher layer indices for a teacher of depth `num_teacher_layers`. For an odd depth
# $L$, one out of two from layer 0 keeps $\lceil L/2 \rceil$ layers, `[0, 2, ..., L - 1]`: the top layer
# too (a 5-layer teacher gives `[0, 2, 4]`, a 1-layer teacher `[0]`).

# %% nbgrader={"grade": false, "grade_id": "every_other_layers", "locked": false, "schema_version": 3, "solution": true, "task": false}
def every_other_layers(num_teacher_layers):
    """The teacher layers a half-depth student keeps: [0, 2, 4, ...] (one out of two, from layer 0;
    ceil(L / 2) of them, so an odd depth keeps its top layer)."""
    ### BEGIN SOLUTION
    return list(range(0, num_teacher_layers, 2))
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_every_other_layers", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
### BEGIN HIDDEN TESTS
from compresslib.capture import capture; capture("02_distilbert_student", "test_every_other_layers", globals())
### END HIDDEN TESTS
assert list(every_other_layers(6)) == [0, 2, 4], "a 6-layer teacher: keep layers 0, 2 and 4"
assert len(every_other_layers(12)) == 6, "half of the teacher's layers"
print("visible tests passed")

# %% [markdown]
# ## 2 · Building the student from its teacher
#
# The student keeps the teacher's **width** (hidden size, heads, feed-forward size), so every tensor of a
# kept teacher layer fits the student as it is. Write `make_student(teacher, layers)` for a
# `BertForSequenceClassification` teacher:
#
# * make a **copy** of the teacher's config with `num_hidden_layers = len(layers)` (do not modify the
#   teacher's own config: `copy.deepcopy`), and build a fresh model of the teacher's class from it,
#   `type(teacher)(config)`;
# * copy into it the teacher's **embeddings** (`.bert.embeddings`: word, position and token-type
#   embeddings and their LayerNorm), teacher layer `layers[i]` into student layer `i`
#   (`.bert.encoder.layer`), the **pooler** (`.bert.pooler`) and the **classifier** (`.classifier`).
#
# *Copy*, do not *share*: if the student's modules were the teacher's, training the student would change
# the teacher too. `module.load_state_dict(other.state_dict())` copies values into a module's own
# tensors; `copy.deepcopy(module)` makes a new module.

# %% nbgrader={"grade": false, "grade_id": "make_student", "locked": false, "schema_version": 3, "solution": true, "task": false}
def make_student(teacher, layers):
    """A BERT with len(layers) layers whose embeddings, layers (student i <- teacher layers[i]), pooler and
    classifier are copies of the teacher's."""
    ### BEGIN SOLUTION
    config = copy.deepcopy(teacher.config)
    config.num_hidden_layers = len(layers)
    student = type(teacher)(config)
    student.bert.embeddings.load_state_dict(teacher.bert.embeddings.state_dict())
    for i, t in enumerate(layers):
        student.bert.encoder.layer[i].load_state_dict(teacher.bert.encoder.layer[t].state_dict())
    student.bert.pooler.load_state_dict(teacher.bert.pooler.state_dict())
    student.classifier.load_state_dict(teacher.classifier.state_dict())
    return student.to(next(teacher.parameters()).device)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_make_student", "locked": true, "points": 4, "schema_version": 3, "solution": false, "task": false}
### BEGIN HIDDEN TESTS
from compresslib.capture import capture; capture("02_distilbert_student", "test_make_student", globals())
### END HIDDEN TESTS
toy_student = make_student(toy_teacher, [0, 2])
assert len(toy_student.bert.encoder.layer) == 2 and toy_student.config.num_hidden_layers == 2, "2 layers"
assert toy_teacher.config.num_hidden_layers == 4, "the teacher must keep its 4 layers (copy its config)"
t_query = toy_teacher.bert.encoder.layer[2].attention.self.query.weight
s_query = toy_student.bert.encoder.layer[1].attention.self.query.weight
assert torch.equal(s_query, t_query), "student layer 1 must start as teacher layer 2"
assert s_query.data_ptr() != t_query.data_ptr(), "copy the tensors: the student must not share them with the teacher"
assert torch.equal(toy_student.bert.embeddings.word_embeddings.weight, toy_teacher.bert.embeddings.word_embeddings.weight), \
    "copy the embeddings"
assert torch.equal(toy_student.classifier.weight, toy_teacher.classifier.weight), "copy the classifier"
print("visible tests passed")

# %% [markdown]
# ### Token-type embeddings and the pooler: what DistilBERT did, and why we keep them
#
# DistilBERT **removed** two pieces of BERT besides half of its layers:
#
# * the **token-type (segment) embeddings**, which tell BERT which of two sentences a token belongs to.
#   They served BERT's sentence-pair pre-training; DistilBERT, like RoBERTa, dropped next-sentence
#   prediction, and the input layer then needs no segment signal;
# * the **pooler**, the dense + tanh layer on the [CLS] vector that BERT trained for next-sentence
#   prediction. DistilBERT's classification head reads the [CLS] hidden state through its own new layer.
#
# DistilBERT could drop them because it then **re-trained the whole student** by distillation on BERT's
# pre-training corpus, so its layers adapted to inputs without the segment vector. We distil on a few
# hundred task examples only, so we keep both:
#
# * our inputs are single sentences, so every token has type 0 and the token-type embedding adds *the
#   same* vector to every position. The copied layers were trained to see it; leaving it out would shift
#   every input they receive;
# * in `BertForSequenceClassification` the classifier reads `pooler(h_[CLS])`, so the pooler belongs to
#   the task head and is copied with the classifier. The copied head does **not** solve the task at the
#   start, though: after 3 of the 6 layers the [CLS] vector is not the one the head was trained on. In an
#   earlier reference run that copied the fine-tuned teacher's head this way, the students' validation
#   accuracy before their first step was 57.3%, exactly the majority class, in all 9 runs.
#
# Note what `make_student` copies here: the layers of a teacher that is already **fine-tuned** on the
# task, so part of the task is handed to the student through the weights before any distillation.
# DistilBERT started from the *pre-trained* BERT instead, and so do the reference run's students
# (`python -m compresslib.runs distill`): `make_student(load_classifier(), layers)` gives that student,
# with a fresh task head.
#
# Keeping the architecture also keeps the class: the student is an ordinary
# `BertForSequenceClassification` that `save_pretrained`/`from_pretrained` and the teacher's tokenizer
# work with.

# %% [markdown]
# ## 3 · The teacher's soft targets
#
# The teacher is a **fixed target**: run it in `eval()` mode (dropout off, or its soft targets are noisy
# and change from call to call) and under `torch.no_grad()` (it gets no gradient; without `no_grad`
# autograd would record a graph through all of its layers for nothing). A Hugging Face model returns an
# output object; its logits are `output.logits`. `batch` holds the model's inputs and `"labels"` (and
# maybe cached `"teacher_logits"`), which the model must not receive.

# %% nbgrader={"grade": false, "grade_id": "teacher_logits", "locked": false, "schema_version": 3, "solution": true, "task": false}
def teacher_logits(teacher, batch):
    """The teacher's logits v for a batch: eval mode, under torch.no_grad(), shape (N, num_labels)."""
    inputs = {key: value for key, value in batch.items() if key not in ("labels", "teacher_logits")}
    ### BEGIN SOLUTION
    teacher.eval()
    with torch.no_grad():
        return teacher(**inputs).logits
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_teacher_logits", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
### BEGIN HIDDEN TESTS
from compresslib.capture import capture; capture("02_distilbert_student", "test_teacher_logits", globals())
### END HIDDEN TESTS
toy_teacher.train()
v = teacher_logits(toy_teacher, toy_batch)
assert isinstance(v, torch.Tensor) and v.shape == (3, 2), "return the logits tensor, shape (batch, num_labels)"
assert not toy_teacher.training, "put the teacher in eval mode (dropout off)"
assert not v.requires_grad, "compute the teacher's logits under torch.no_grad()"
assert torch.equal(v, teacher_logits(toy_teacher, toy_batch)), "the soft targets must not change between calls"
print("visible tests passed")

# %% [markdown]
# ## 4 · The distillation step on BERT batches
#
# The teacher's logits do not change while the student trains, so we compute them **once** over the
# training set (with your `teacher_logits`) and store them with each example: every batch then carries
# `batch["teacher_logits"]` next to `batch["labels"]`, and training the student never runs the teacher
# (that is what the reference run does, and it halves the cost of distillation here).
#
# Write one step on the combined loss of notebook 01,
# $\mathcal{L}_C = \alpha\,\mathcal{L} + (1-\alpha)\,\mathcal{L}_D$, using `combined_loss(student_logits,
# teacher_logits, labels, alpha, temperature)` (compresslib's version of the one you wrote): student in
# train mode, its forward pass **with** autograd, zero the gradients, backpropagate, one optimizer step;
# return the loss as a float.

# %% nbgrader={"grade": false, "grade_id": "distill_step", "locked": false, "schema_version": 3, "solution": true, "task": false}
def distill_step(student, batch, optimizer, *, temperature, alpha):
    """One step on L_C with the cached teacher logits batch["teacher_logits"]; returns the loss as a float."""
    inputs = {key: value for key, value in batch.items() if key not in ("labels", "teacher_logits")}
    ### BEGIN SOLUTION
    student.train()
    student_logits = student(**inputs).logits
    loss = combined_loss(student_logits, batch["teacher_logits"], batch["labels"], alpha, temperature)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_distill_step", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
### BEGIN HIDDEN TESTS
from compresslib.capture import capture; capture("02_distilbert_student", "test_distill_step", globals())
### END HIDDEN TESTS
toy_student = copy.deepcopy(toy_teacher)  # any student will do for this test
with torch.no_grad():
    toy_kd_batch = {**toy_batch, "teacher_logits": toy_teacher.eval()(**toy_batch).logits}
optimizer = torch.optim.SGD(toy_student.parameters(), lr=0.1)
before = [p.detach().clone() for p in toy_student.parameters()]
loss = distill_step(toy_student, toy_kd_batch, optimizer, temperature=2.0, alpha=0.5)
assert isinstance(loss, float), "return the loss as a Python float (loss.item())"
assert any(not torch.equal(a, b) for a, b in zip(before, toy_student.parameters())), "the student did not change"
assert toy_student.training, "the student trains in train mode"
print("visible tests passed")

# %% [markdown]
# ## 5 · Your student against the teacher and against the student without the teacher
#
# Now the real thing, with `compresslib`'s plumbing for data, models, the training loop and the
# measurements: the teacher is MiniLM-L6 (6 layers, hidden size 384) fine-tuned on Rotten Tomatoes
# polarity snippets; the students get its layers `every_other_layers(6)`. Two students, identical but for
# the loss:
#
# * **no KD**: your `make_student` + ordinary fine-tuning on the labels (`hard_label_step`);
# * **KD**: your `make_student` + your `distill_step` on cached soft targets from your `teacher_logits`
#   ($T = 2$, $\alpha = 0.5$).
#
# To stay within minutes on a CPU everything is small: a few hundred training snippets, one epoch,
# sequences cut at 48 tokens, the (pre-trained) word-embedding matrix frozen. If the reference run's
# teacher exists (`make reference` writes `runs/distill/cpu/teacher`), it is loaded; otherwise the
# teacher is fine-tuned here, briefly. The `quick` profile (what Validate and the grader use, or
# `COMPRESSLIB_PROFILE=quick`) shrinks everything to a smoke test whose numbers mean nothing. Grading
# skips these experiments (their cells are tagged `grader-skip`).

# %% tags=["grader-skip"]
from datasets import DatasetDict
from transformers import AutoModelForSequenceClassification

from compresslib.data import load_polarity_dataset
from compresslib.models import count_parameters, load_classifier, load_tokenizer
from compresslib.profiles import notebook_profile
from compresslib.training import (accuracy, fit, hard_label_step, make_loader, time_inference, tokenize,
                                  with_teacher_logits)

PROFILE = notebook_profile()  # quick under Validate and the grader, else cpu (or $COMPRESSLIB_PROFILE)
SIZES = {
    "quick": dict(train=16, test=32, timing=16, max_length=16, batch_size=8, eval_batch_size=32, lr=2e-4),
    "cpu": dict(train=256, test=256, timing=128, max_length=48, batch_size=16, eval_batch_size=128, lr=2e-4),
}[PROFILE if PROFILE == "quick" else "cpu"]
TEMPERATURE, ALPHA = 2.0, 0.5
torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
print(f"profile {PROFILE!r}: {SIZES}")

tokenizer = load_tokenizer()
raw = load_polarity_dataset()
data = tokenize(DatasetDict(
    train=raw["train"].shuffle(seed=0).select(range(SIZES["train"])),
    test=raw["test"].shuffle(seed=0).select(range(SIZES["test"])),
), tokenizer, max_length=SIZES["max_length"])
test_loader = make_loader(data["test"], tokenizer, batch_size=SIZES["eval_batch_size"], shuffle=False)
timing_loader = make_loader(data["test"].select(range(SIZES["timing"])), tokenizer,
                            batch_size=SIZES["eval_batch_size"], shuffle=False)


def freeze_word_embeddings(model):
    """Keep the pre-trained word-embedding matrix fixed (its update is a large share of a CPU step)."""
    model.get_input_embeddings().weight.requires_grad_(False)
    return model


def reference_teacher():
    """runs/distill/cpu/teacher from the reference run (`make reference`), if this checkout has one."""
    if PROFILE == "quick":
        return None
    for folder in [Path.cwd(), *Path.cwd().parents]:
        candidate = folder / "runs" / "distill" / "cpu" / "teacher"
        if (candidate / "config.json").exists():
            return candidate
    return None


started = time.perf_counter()
found = reference_teacher()
if found is not None:
    teacher = AutoModelForSequenceClassification.from_pretrained(found).eval()
    teacher_origin = f"loaded from the reference run ({found.relative_to(found.parents[3])})"
else:
    torch.manual_seed(0)
    teacher = freeze_word_embeddings(load_classifier(seed=0))
    teacher_loader = make_loader(data["train"], tokenizer, batch_size=SIZES["batch_size"], shuffle=True, seed=0)
    fit(teacher, teacher_loader, epochs=1, lr=SIZES["lr"], desc="fine-tuning the teacher")
    teacher.eval()
    teacher_origin = f"fine-tuned here on {len(data['train'])} snippets for 1 epoch"
print(f"teacher: MiniLM-L6, {teacher_origin} ({time.perf_counter() - started:.0f} s)")

# %% [markdown]
# Cache the soft targets once, with your `teacher_logits`, over the students' training set (in a fixed
# order, then stored as a column so they follow their examples when the loader shuffles).

# %% tags=["grader-skip"]
started = time.perf_counter()
in_order = make_loader(data["train"], tokenizer, batch_size=SIZES["eval_batch_size"], shuffle=False)
cached = torch.cat([teacher_logits(teacher, batch) for batch in in_order])
kd_train = with_teacher_logits(data["train"], cached)
print(f"cached {tuple(cached.shape)} teacher logits in {time.perf_counter() - started:.1f} s")

layers = every_other_layers(teacher.config.num_hidden_layers)
students = {}
for name in ("no KD", "KD"):
    torch.manual_seed(0)
    student = freeze_word_embeddings(make_student(teacher, layers))
    if name == "KD":
        loader = make_loader(kd_train, tokenizer, batch_size=SIZES["batch_size"], shuffle=True, seed=0,
                             extra_columns=("teacher_logits",))
        step = lambda model, batch, optimizer: {  # noqa: E731
            "loss": distill_step(model, batch, optimizer, temperature=TEMPERATURE, alpha=ALPHA)}
    else:
        loader = make_loader(data["train"], tokenizer, batch_size=SIZES["batch_size"], shuffle=True, seed=0)
        step = hard_label_step
    started = time.perf_counter()
    history = fit(student, loader, epochs=1, lr=SIZES["lr"], step=step, desc=f"student ({name})")
    students[name] = student.eval()
    print(f"student ({name}), layers {layers}: {len(history)} steps in {time.perf_counter() - started:.0f} s, "
          f"last loss {history[-1]['loss']:.3f}")

# %% [markdown]
# ### The lecture's table
#
# Parameters, inference time (one pass over the same test batches on this machine, best of 3), test
# accuracy, and the student's accuracy as a percentage of the teacher's.

# %% tags=["grader-skip"]
rows = {"teacher (6 layers)": teacher, **{f"student {len(layers)} layers, {n}": m for n, m in students.items()}}
results = {}
for name, model in rows.items():
    results[name] = dict(params=count_parameters(model) / 1e6, seconds=time_inference(model, timing_loader),
                         accuracy=accuracy(model, test_loader))
teacher_result = results["teacher (6 layers)"]
print(f"| model | params (M) | inference time (s) | accuracy (%) | % of teacher |")
print(f"|---|---:|---:|---:|---:|")
for name, r in results.items():
    print(f"| {name} | {r['params']:.1f} | {r['seconds']:.2f} | {100 * r['accuracy']:.1f} | "
          f"{100 * r['accuracy'] / teacher_result['accuracy']:.1f} |")
print(f"\n{len(data['test'])} test snippets; inference time over {SIZES['timing']} of them in batches of "
      f"{SIZES['eval_batch_size']} on the CPU; students trained on {len(data['train'])} snippets for 1 epoch.")
if PROFILE == "quick":
    print("profile 'quick': a smoke test on a handful of examples, these numbers mean nothing")

# %% [markdown]
# ### What to look for
#
# * **Parameters.** Half of the layers is not half of the parameters: the embeddings (30,522 words x 384)
#   are a large share of a small BERT and the student keeps all of them. BERT-base's embeddings are a
#   smaller share of its 110M parameters, which is why DistilBERT has 66M.
# * **Inference time** falls with the depth, nearly in proportion: the layers are where the compute is.
# * **Accuracy.** With a few hundred snippets and one epoch the differences between the students are a
#   few points and depend on the seed; one run cannot separate them. Note also that here both students
#   copy the layers of the **fine-tuned** teacher, so the task reaches them through the weights as well as
#   through the loss.
#
# ## What the evidence shows
#
# The reference run measures what one run here cannot: students made from the *pre-trained* MiniLM (as
# DistilBERT was), a label-scarce setting where the teacher's soft targets cover snippets that have no
# label, at least five seeds, the whole test split, and paired tests; its report is
# `docs/results/distill/results.md`.
#
# <!-- results:distill:02 -->
# From the reference run (`python -m compresslib.runs distill --profile cpu --threads 1`, its numbers in `docs/results/distill/results.json`; this paragraph is generated from that file):
#
# * **Label-scarce distillation.** With 250 labels, the student that also learns from the teacher's soft targets (T = 1, alpha = 0.25, chosen on validation data) on 2,048 unlabelled training snippets beats the student trained on the labels alone: +3.0 [+1.4, +4.6] points (mean, 95% CI), 71.1% against 68.1% over 5 seeds (paired t-test p = 0.0062, McNemar p < 0.001 on the pooled predictions).
# * **Retention.** The 3-layer student with all labels scores 66.9%: 81.6% of the reference teacher's 82.0%, but 37.6% of its gain over the majority class (57.8%), with 77% of its parameters (the word embeddings are kept whole) and 45% of its inference time.
# <!-- /results:distill:02 -->
