"""Plausible wrong answers to notebook 02 that are NOT in its catalog (held out): written the way
students write them, to measure how many wrong answers the hidden tests catch beyond the mistakes they
were built for. Same entry format as ``solutions/02_distilbert_student/wrong_answers.py`` (``cell``:
the solution cell replaced, ``code``: its new content); no message is asserted, only that the
submission loses points (``tests/test_grading_mutants.py``).
"""

MUTANTS = {
    # --- every_other_layers --------------------------------------------------------------------------
    "stops_one_short": {
        "cell": "every_other_layers",
        "code": '''def every_other_layers(num_teacher_layers):
    return list(range(0, num_teacher_layers - 1, 2))
''',
    },
    "one_based_odd_layers": {
        "cell": "every_other_layers",
        "code": '''def every_other_layers(num_teacher_layers):
    return [i for i in range(1, num_teacher_layers + 1) if i % 2 == 1]
''',
    },
    "spread_to_the_top_like_the_release": {
        "cell": "every_other_layers",
        "code": '''def every_other_layers(num_teacher_layers):
    k = num_teacher_layers // 2
    return [round(i * (num_teacher_layers - 1) / (k - 1)) for i in range(k)]
''',
    },
    "counts_down_from_the_top": {
        "cell": "every_other_layers",
        "code": '''def every_other_layers(num_teacher_layers):
    return sorted(range(num_teacher_layers - 1, -1, -2))
''',
    },
    # --- make_student --------------------------------------------------------------------------------
    "layer_modules_assigned": {
        "cell": "make_student",
        "code": '''def make_student(teacher, layers):
    config = copy.deepcopy(teacher.config)
    config.num_hidden_layers = len(layers)
    student = type(teacher)(config)
    student.bert.embeddings.load_state_dict(teacher.bert.embeddings.state_dict())
    for i, t in enumerate(layers):
        student.bert.encoder.layer[i] = teacher.bert.encoder.layer[t]
    student.bert.pooler.load_state_dict(teacher.bert.pooler.state_dict())
    student.classifier.load_state_dict(teacher.classifier.state_dict())
    return student
''',
    },
    "whole_state_dict_non_strict": {
        "cell": "make_student",
        "code": '''def make_student(teacher, layers):
    config = copy.deepcopy(teacher.config)
    config.num_hidden_layers = len(layers)
    student = type(teacher)(config)
    student.load_state_dict(teacher.state_dict(), strict=False)
    return student
''',
    },
    "deepcopy_but_layers_from_the_teacher": {
        "cell": "make_student",
        "code": '''def make_student(teacher, layers):
    student = copy.deepcopy(teacher)
    student.bert.encoder.layer = nn.ModuleList([teacher.bert.encoder.layer[t] for t in layers])
    student.config.num_hidden_layers = len(layers)
    return student
''',
    },
    "word_embeddings_shared": {
        "cell": "make_student",
        "code": '''def make_student(teacher, layers):
    config = copy.deepcopy(teacher.config)
    config.num_hidden_layers = len(layers)
    student = type(teacher)(config)
    student.bert.embeddings.load_state_dict(teacher.bert.embeddings.state_dict())
    student.bert.embeddings.word_embeddings = teacher.bert.embeddings.word_embeddings
    for i, t in enumerate(layers):
        student.bert.encoder.layer[i].load_state_dict(teacher.bert.encoder.layer[t].state_dict())
    student.bert.pooler.load_state_dict(teacher.bert.pooler.state_dict())
    student.classifier.load_state_dict(teacher.classifier.state_dict())
    return student
''',
    },
    "only_the_encoder_copied": {
        "cell": "make_student",
        "code": '''def make_student(teacher, layers):
    config = copy.deepcopy(teacher.config)
    config.num_hidden_layers = len(layers)
    student = type(teacher)(config)
    student.bert.embeddings = copy.deepcopy(teacher.bert.embeddings)
    student.bert.encoder.layer = nn.ModuleList([copy.deepcopy(teacher.bert.encoder.layer[t]) for t in layers])
    return student
''',
    },
    "deletes_the_other_layers_in_place": {
        "cell": "make_student",
        "code": '''def make_student(teacher, layers):
    config = copy.deepcopy(teacher.config)
    config.num_hidden_layers = len(layers)
    for t in sorted(set(range(len(teacher.bert.encoder.layer))) - set(layers), reverse=True):
        del teacher.bert.encoder.layer[t]
    student = type(teacher)(config)
    student.load_state_dict(teacher.state_dict())
    return student
''',
    },
    # --- teacher_logits ------------------------------------------------------------------------------
    "eval_without_parentheses": {
        "cell": "teacher_logits",
        "code": '''def teacher_logits(teacher, batch):
    inputs = {key: value for key, value in batch.items() if key not in ("labels", "teacher_logits")}
    teacher.eval
    with torch.no_grad():
        return teacher(**inputs).logits
''',
    },
    "logits_via_data": {
        "cell": "teacher_logits",
        "code": '''def teacher_logits(teacher, batch):
    inputs = {key: value for key, value in batch.items() if key not in ("labels", "teacher_logits")}
    teacher.eval()
    return teacher(**inputs).logits.data
''',
    },
    "whole_batch_to_the_model": {
        "cell": "teacher_logits",
        "code": '''def teacher_logits(teacher, batch):
    teacher.eval()
    with torch.no_grad():
        return teacher(**batch).logits
''',
    },
    "softened_at_t2": {
        "cell": "teacher_logits",
        "code": '''def teacher_logits(teacher, batch):
    inputs = {key: value for key, value in batch.items() if key not in ("labels", "teacher_logits")}
    teacher.eval()
    with torch.no_grad():
        logits = teacher(**inputs).logits
    return torch.softmax(logits / 2.0, dim=-1)
''',
    },
    "ids_and_mask_only_positional": {
        "cell": "teacher_logits",
        "code": '''def teacher_logits(teacher, batch):
    teacher.eval()
    with torch.no_grad():
        return teacher(batch["input_ids"]).logits
''',
    },
    # --- distill_step --------------------------------------------------------------------------------
    "kl_div_without_t2": {
        "cell": "distill_step",
        "code": '''import torch.nn.functional as F


def distill_step(student, batch, optimizer, *, temperature, alpha):
    inputs = {key: value for key, value in batch.items() if key not in ("labels", "teacher_logits")}
    student.train()
    z = student(**inputs).logits
    soft = F.kl_div(F.log_softmax(z / temperature, dim=-1), F.softmax(batch["teacher_logits"] / temperature, dim=-1),
                    reduction="batchmean")
    loss = alpha * F.cross_entropy(z, batch["labels"]) + (1 - alpha) * soft
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()
''',
    },
    "kl_div_mean_reduction": {
        "cell": "distill_step",
        "code": '''import torch.nn.functional as F


def distill_step(student, batch, optimizer, *, temperature, alpha):
    inputs = {key: value for key, value in batch.items() if key not in ("labels", "teacher_logits")}
    student.train()
    z = student(**inputs).logits
    soft = F.kl_div(F.log_softmax(z / temperature, dim=-1), F.softmax(batch["teacher_logits"] / temperature, dim=-1),
                    reduction="mean") * temperature**2
    loss = alpha * F.cross_entropy(z, batch["labels"]) + (1 - alpha) * soft
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()
''',
    },
    "kl_instead_of_the_combined_loss": {
        "cell": "distill_step",
        "code": '''import torch.nn.functional as F


def distill_step(student, batch, optimizer, *, temperature, alpha):
    inputs = {key: value for key, value in batch.items() if key not in ("labels", "teacher_logits")}
    student.train()
    z = student(**inputs).logits
    soft = F.kl_div(F.log_softmax(z / temperature, dim=-1), F.softmax(batch["teacher_logits"] / temperature, dim=-1),
                    reduction="batchmean") * temperature**2
    loss = alpha * F.cross_entropy(z, batch["labels"]) + (1 - alpha) * soft
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()
''',
    },
    "returns_a_dict_like_hard_label_step": {
        "cell": "distill_step",
        "code": '''def distill_step(student, batch, optimizer, *, temperature, alpha):
    inputs = {key: value for key, value in batch.items() if key not in ("labels", "teacher_logits")}
    student.train()
    loss = combined_loss(student(**inputs).logits, batch["teacher_logits"], batch["labels"], alpha, temperature)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return {"loss": loss.item()}
''',
    },
    "detached_logits": {
        "cell": "distill_step",
        "code": '''def distill_step(student, batch, optimizer, *, temperature, alpha):
    inputs = {key: value for key, value in batch.items() if key not in ("labels", "teacher_logits")}
    student.train()
    z = student(**inputs).logits.detach().requires_grad_()
    loss = combined_loss(z, batch["teacher_logits"], batch["labels"], alpha, temperature)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()
''',
    },
    "loss_after_the_step": {
        "cell": "distill_step",
        "code": '''def distill_step(student, batch, optimizer, *, temperature, alpha):
    inputs = {key: value for key, value in batch.items() if key not in ("labels", "teacher_logits")}
    student.train()
    loss = combined_loss(student(**inputs).logits, batch["teacher_logits"], batch["labels"], alpha, temperature)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        after = combined_loss(student(**inputs).logits, batch["teacher_logits"], batch["labels"], alpha, temperature)
    return after.item()
''',
    },
    "student_eval_after_the_step": {
        "cell": "distill_step",
        "code": '''def distill_step(student, batch, optimizer, *, temperature, alpha):
    inputs = {key: value for key, value in batch.items() if key not in ("labels", "teacher_logits")}
    student.train()
    loss = combined_loss(student(**inputs).logits, batch["teacher_logits"], batch["labels"], alpha, temperature)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    student.eval()
    return loss.item()
''',
    },
    "labels_popped_from_the_batch": {
        "cell": "distill_step",
        "code": '''def distill_step(student, batch, optimizer, *, temperature, alpha):
    labels = batch.pop("labels")
    teacher = batch.pop("teacher_logits")
    student.train()
    loss = combined_loss(student(**batch).logits, teacher, labels, alpha, temperature)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()
''',
    },
}
