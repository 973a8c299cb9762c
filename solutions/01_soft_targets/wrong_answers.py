"""Catalogued wrong answers for 01_soft_targets: the mistakes students plausibly make.

Each entry replaces one solution cell (``cell``) of a complete submission. CI autogrades every entry
with nbgrader and checks that the test cell ``test`` loses its points and that its feedback says
``message`` (a regular expression), i.e. names the mistake. Not released to students (nbgrader
ignores ``*.py`` in the source folder).
"""

WRONG_ANSWERS = {
    "softmax_without_temperature": {
        "cell": "softmax_with_temperature",
        "test": "test_softmax_with_temperature",
        "message": "ordinary softmax",
        "code": '''def softmax_with_temperature(logits, temperature, dim=-1):
    return torch.softmax(logits, dim=dim)
''',
    },
    "softmax_overflows": {
        "cell": "softmax_with_temperature",
        "test": "test_softmax_with_temperature",
        "message": "overflow",
        "code": '''def softmax_with_temperature(logits, temperature, dim=-1):
    exp = torch.exp(logits / temperature)
    return exp / exp.sum(dim=dim, keepdim=True)
''',
    },
    "t2_factor_dropped": {
        "cell": "distillation_loss",
        "test": "test_distillation_loss",
        "message": "drop the T\\^2 factor",
        "code": '''def distillation_loss(student_logits, teacher_logits, temperature):
    log_p = F.log_softmax(student_logits / temperature, dim=-1)
    q = softmax_with_temperature(teacher_logits, temperature)
    return -(q * log_p).sum(dim=-1).mean()
''',
    },
    "temperature_applied_twice": {
        "cell": "distillation_loss",
        "test": "test_distillation_loss",
        "message": "applied twice",
        "code": '''def distillation_loss(student_logits, teacher_logits, temperature):
    log_p = F.log_softmax(student_logits / temperature / temperature, dim=-1)
    q = softmax_with_temperature(teacher_logits / temperature, temperature)
    return -(q * log_p).sum(dim=-1).mean() * temperature**2
''',
    },
    "kl_direction_reversed": {
        "cell": "distillation_loss",
        "test": "test_distillation_loss",
        "message": "reversed direction",
        "code": '''def distillation_loss(student_logits, teacher_logits, temperature):
    log_p = F.log_softmax(student_logits / temperature, dim=-1)
    log_q = F.log_softmax(teacher_logits / temperature, dim=-1)
    return (log_p.exp() * (log_p - log_q)).sum(dim=-1).mean() * temperature**2
''',
    },
    "teacher_and_student_swapped": {
        "cell": "distillation_loss",
        "test": "test_distillation_loss",
        "message": "teacher and student are swapped",
        "code": '''def distillation_loss(student_logits, teacher_logits, temperature):
    log_q = F.log_softmax(teacher_logits / temperature, dim=-1)
    p = softmax_with_temperature(student_logits, temperature)
    return -(p * log_q).sum(dim=-1).mean() * temperature**2
''',
    },
    "sum_instead_of_batch_mean": {
        "cell": "distillation_loss",
        "test": "test_distillation_loss",
        "message": "batch size",
        "code": '''def distillation_loss(student_logits, teacher_logits, temperature):
    log_p = F.log_softmax(student_logits / temperature, dim=-1)
    q = softmax_with_temperature(teacher_logits, temperature)
    return -(q * log_p).sum() * temperature**2
''',
    },
    "teacher_softmax_without_temperature": {
        "cell": "distillation_loss",
        "test": "test_distillation_loss",
        "message": "teacher's softmax has no temperature",
        "code": '''def distillation_loss(student_logits, teacher_logits, temperature):
    log_p = F.log_softmax(student_logits / temperature, dim=-1)
    q = torch.softmax(teacher_logits, dim=-1)
    return -(q * log_p).sum(dim=-1).mean() * temperature**2
''',
    },
    "hard_loss_at_temperature_t": {
        "cell": "combined_loss",
        "test": "test_combined_loss",
        "message": "hard loss was computed at temperature T",
        "code": '''def combined_loss(student_logits, teacher_logits, labels, alpha, temperature):
    hard = F.cross_entropy(student_logits / temperature, labels)
    soft = distillation_loss(student_logits, teacher_logits, temperature)
    return alpha * hard + (1 - alpha) * soft
''',
    },
    "alpha_swapped": {
        "cell": "combined_loss",
        "test": "test_combined_loss",
        "message": "alpha and 1 - alpha are swapped",
        "code": '''def combined_loss(student_logits, teacher_logits, labels, alpha, temperature):
    hard = F.cross_entropy(student_logits, labels)
    soft = distillation_loss(student_logits, teacher_logits, temperature)
    return (1 - alpha) * hard + alpha * soft
''',
    },
    "lecture_no_grad_bug": {
        "cell": "kd_step",
        "test": "test_kd_step",
        "message": "no_grad|did not change",
        "code": '''def kd_step(teacher, student, batch, optimizer, *, temperature, alpha):
    inputs = {key: value for key, value in batch.items() if key != "labels"}
    teacher.eval()
    student.train()
    with torch.no_grad():
        teacher_logits = teacher(**inputs)
        student_logits = student(**inputs)
    loss = combined_loss(student_logits, teacher_logits, batch["labels"], alpha, temperature)
    if loss.requires_grad:
        loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    return loss.item()
''',
    },
    "teacher_left_in_train_mode": {
        "cell": "kd_step",
        "test": "test_kd_step",
        "message": "train mode",
        "code": '''def kd_step(teacher, student, batch, optimizer, *, temperature, alpha):
    inputs = {key: value for key, value in batch.items() if key != "labels"}
    with torch.no_grad():
        teacher_logits = teacher(**inputs)
    student.train()
    loss = combined_loss(student(**inputs), teacher_logits, batch["labels"], alpha, temperature)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()
''',
    },
    "teacher_gradients_enabled": {
        "cell": "kd_step",
        "test": "test_kd_step",
        "message": "gradients enabled",
        "code": '''def kd_step(teacher, student, batch, optimizer, *, temperature, alpha):
    inputs = {key: value for key, value in batch.items() if key != "labels"}
    teacher.eval()
    teacher_logits = teacher(**inputs).detach()
    student.train()
    loss = combined_loss(student(**inputs), teacher_logits, batch["labels"], alpha, temperature)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()
''',
    },
}

# The example submissions shipped under examples/submissions/ (see compresslib.course.examples).
EXAMPLE_MISTAKE = "t2_factor_dropped"
