"""Catalogued wrong answers for 02_distilbert_student: the mistakes students plausibly make.

Each entry replaces one solution cell (``cell``) of a complete submission. CI autogrades every entry
with nbgrader and checks that the test cell ``test`` loses its points and that its feedback says
``message`` (a regular expression), i.e. names the mistake, while every other test cell keeps its
points. Not released to students (nbgrader ignores ``*.py`` in the source folder).
"""

WRONG_ANSWERS = {
    "first_k_layers_chosen": {
        "cell": "every_other_layers",
        "test": "test_every_other_layers",
        "message": "first k layers",
        "code": '''def every_other_layers(num_teacher_layers):
    return list(range(num_teacher_layers // 2))
''',
    },
    "first_k_layers_copied": {
        "cell": "make_student",
        "test": "test_make_student",
        "message": "first layers",
        "code": '''def make_student(teacher, layers):
    config = copy.deepcopy(teacher.config)
    config.num_hidden_layers = len(layers)
    student = type(teacher)(config)
    student.bert.embeddings.load_state_dict(teacher.bert.embeddings.state_dict())
    for i in range(len(layers)):
        student.bert.encoder.layer[i].load_state_dict(teacher.bert.encoder.layer[i].state_dict())
    student.bert.pooler.load_state_dict(teacher.bert.pooler.state_dict())
    student.classifier.load_state_dict(teacher.classifier.state_dict())
    return student
''',
    },
    "tensors_shared_not_copied": {
        "cell": "make_student",
        "test": "test_make_student",
        "message": "shares tensors with the teacher",
        "code": '''def make_student(teacher, layers):
    config = copy.deepcopy(teacher.config)
    config.num_hidden_layers = len(layers)
    student = type(teacher)(config)
    student.bert.embeddings = teacher.bert.embeddings
    student.bert.encoder.layer = nn.ModuleList([teacher.bert.encoder.layer[i] for i in layers])
    student.bert.pooler = teacher.bert.pooler
    student.classifier = teacher.classifier
    return student
''',
    },
    "embeddings_forgotten": {
        "cell": "make_student",
        "test": "test_make_student",
        "message": "forget to copy the embeddings",
        "code": '''def make_student(teacher, layers):
    config = copy.deepcopy(teacher.config)
    config.num_hidden_layers = len(layers)
    student = type(teacher)(config)
    for i, t in enumerate(layers):
        student.bert.encoder.layer[i].load_state_dict(teacher.bert.encoder.layer[t].state_dict())
    student.bert.pooler.load_state_dict(teacher.bert.pooler.state_dict())
    student.classifier.load_state_dict(teacher.classifier.state_dict())
    return student
''',
    },
    "teacher_config_modified": {
        "cell": "make_student",
        "test": "test_make_student",
        "message": "changed the teacher",
        "code": '''def make_student(teacher, layers):
    config = teacher.config
    config.num_hidden_layers = len(layers)
    student = type(teacher)(config)
    student.bert.embeddings.load_state_dict(teacher.bert.embeddings.state_dict())
    for i, t in enumerate(layers):
        student.bert.encoder.layer[i].load_state_dict(teacher.bert.encoder.layer[t].state_dict())
    student.bert.pooler.load_state_dict(teacher.bert.pooler.state_dict())
    student.classifier.load_state_dict(teacher.classifier.state_dict())
    return student
''',
    },
    "teacher_left_in_train_mode": {
        "cell": "teacher_logits",
        "test": "test_teacher_logits",
        "message": "train mode \\(dropout on\\)",
        "code": '''def teacher_logits(teacher, batch):
    inputs = {key: value for key, value in batch.items() if key not in ("labels", "teacher_logits")}
    with torch.no_grad():
        return teacher(**inputs).logits
''',
    },
    "teacher_gradients_enabled": {
        "cell": "teacher_logits",
        "test": "test_teacher_logits",
        "message": "gradients enabled",
        "code": '''def teacher_logits(teacher, batch):
    inputs = {key: value for key, value in batch.items() if key not in ("labels", "teacher_logits")}
    teacher.eval()
    return teacher(**inputs).logits.detach()
''',
    },
    "lecture_no_grad_bug": {
        "cell": "distill_step",
        "test": "test_distill_step",
        "message": "no_grad",
        "code": '''def distill_step(student, batch, optimizer, *, temperature, alpha):
    inputs = {key: value for key, value in batch.items() if key not in ("labels", "teacher_logits")}
    student.train()
    with torch.no_grad():
        student_logits = student(**inputs).logits
    loss = combined_loss(student_logits, batch["teacher_logits"], batch["labels"], alpha, temperature)
    if loss.requires_grad:
        loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    return loss.item()
''',
    },
    "soft_loss_without_t2": {
        "cell": "distill_step",
        "test": "test_distill_step",
        "message": "T\\^2 factor",
        "code": '''def distill_step(student, batch, optimizer, *, temperature, alpha):
    inputs = {key: value for key, value in batch.items() if key not in ("labels", "teacher_logits")}
    student.train()
    z = student(**inputs).logits
    q = torch.softmax(batch["teacher_logits"] / temperature, dim=-1)
    soft = -(q * torch.log_softmax(z / temperature, dim=-1)).sum(-1).mean()
    hard = torch.nn.functional.cross_entropy(z, batch["labels"])
    loss = alpha * hard + (1 - alpha) * soft
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()
''',
    },
}

# The example submissions shipped under examples/submissions/ (see compresslib.course.examples).
EXAMPLE_MISTAKE = "tensors_shared_not_copied"
