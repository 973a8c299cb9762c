"""Catalogued wrong answers for 02_distilbert_student: the mistakes students plausibly make.

Each entry replaces one solution cell (``cell``) of a complete submission. CI grades every entry
(in-process in ``tests/test_grading_distilbert.py``, through nbgrader in the pipeline tests) and checks
that the test cell ``test`` loses its points and that its feedback says ``message`` (a regular
expression), i.e. names the mistake, while every other test cell keeps its points. Not released to
students (nbgrader ignores ``*.py`` in the source folder).

The pieces below are the solution's own lines; each entry is built from them and the lines it gets wrong.
"""

_NEW_STUDENT = '''def make_student(teacher, layers):
    config = copy.deepcopy(teacher.config)
    config.num_hidden_layers = len(layers)
    student = type(teacher)(config)
'''
_COPY_EMBEDDINGS = '''    student.bert.embeddings.load_state_dict(teacher.bert.embeddings.state_dict())
'''
_COPY_LAYERS = '''    for i, t in enumerate(layers):
        student.bert.encoder.layer[i].load_state_dict(teacher.bert.encoder.layer[t].state_dict())
'''
_COPY_POOLER = '''    student.bert.pooler.load_state_dict(teacher.bert.pooler.state_dict())
'''
_COPY_CLASSIFIER = '''    student.classifier.load_state_dict(teacher.classifier.state_dict())
'''
_TEACHER_INPUTS = '''def teacher_logits(teacher, batch):
    inputs = {key: value for key, value in batch.items() if key not in ("labels", "teacher_logits")}
'''
_STEP_INPUTS = '''def distill_step(student, batch, optimizer, *, temperature, alpha):
    inputs = {key: value for key, value in batch.items() if key not in ("labels", "teacher_logits")}
'''
_COMBINED = '''    loss = combined_loss(student_logits, batch["teacher_logits"], batch["labels"], alpha, temperature)
'''
_UPDATE = '''    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
'''

WRONG_ANSWERS = {
    "first_k_layers_chosen": {
        "cell": "every_other_layers",
        "test": "test_every_other_layers",
        "message": "first k layers",
        "code": '''def every_other_layers(num_teacher_layers):
    return list(range(num_teacher_layers // 2))
''',
    },
    "odd_layers_chosen": {
        "cell": "every_other_layers",
        "test": "test_every_other_layers",
        "message": "odd layers",
        "code": '''def every_other_layers(num_teacher_layers):
    return list(range(1, num_teacher_layers, 2))
''',
    },
    "layers_in_reversed_order": {
        "cell": "every_other_layers",
        "test": "test_every_other_layers",
        "message": "reversed order",
        "code": '''def every_other_layers(num_teacher_layers):
    return list(range(0, num_teacher_layers, 2))[::-1]
''',
    },
    "odd_depth_drops_the_top_layer": {
        "cell": "every_other_layers",
        "test": "test_every_other_layers",
        "message": "odd depth the top layer is left out",
        "code": '''def every_other_layers(num_teacher_layers):
    return [2 * i for i in range(num_teacher_layers // 2)]
''',
    },
    "indices_counted_from_one": {
        "cell": "every_other_layers",
        "test": "test_every_other_layers",
        "message": "count from 1",
        "code": '''def every_other_layers(num_teacher_layers):
    return list(range(2, num_teacher_layers + 1, 2))
''',
    },
    "top_half_chosen": {
        "cell": "every_other_layers",
        "test": "test_every_other_layers",
        "message": "these are the top layers",
        "code": '''def every_other_layers(num_teacher_layers):
    return list(range(num_teacher_layers // 2, num_teacher_layers))
''',
    },
    "depth_hard_coded": {
        "cell": "every_other_layers",
        "test": "test_every_other_layers",
        "message": "whatever the teacher's depth",
        "code": '''def every_other_layers(num_teacher_layers):
    return [0, 2, 4]
''',
    },
    "count_instead_of_indices": {
        "cell": "every_other_layers",
        "test": "test_every_other_layers",
        "message": "how many layers the student keeps, not which",
        "code": '''def every_other_layers(num_teacher_layers):
    return num_teacher_layers // 2
''',
    },
    "first_k_layers_copied": {
        "cell": "make_student",
        "test": "test_make_student",
        "message": "first layers",
        "code": _NEW_STUDENT + _COPY_EMBEDDINGS + '''    for i in range(len(layers)):
        student.bert.encoder.layer[i].load_state_dict(teacher.bert.encoder.layer[i].state_dict())
''' + _COPY_POOLER + _COPY_CLASSIFIER + '''    return student
''',
    },
    "tensors_shared_not_copied": {
        "cell": "make_student",
        "test": "test_make_student",
        "message": "shares tensors with the teacher",
        "code": _NEW_STUDENT + '''    student.bert.embeddings = teacher.bert.embeddings
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
        "code": _NEW_STUDENT + _COPY_LAYERS + _COPY_POOLER + _COPY_CLASSIFIER + '''    return student
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
''' + _COPY_EMBEDDINGS + _COPY_LAYERS + _COPY_POOLER + _COPY_CLASSIFIER + '''    return student
''',
    },
    "pooler_not_copied": {
        "cell": "make_student",
        "test": "test_make_student",
        "message": "pooler was not copied",
        "code": _NEW_STUDENT + _COPY_EMBEDDINGS + _COPY_LAYERS + _COPY_CLASSIFIER + '''    return student
''',
    },
    "classifier_not_copied": {
        "cell": "make_student",
        "test": "test_make_student",
        "message": "classifier was not copied",
        "code": _NEW_STUDENT + _COPY_EMBEDDINGS + _COPY_LAYERS + _COPY_POOLER + '''    return student
''',
    },
    "token_type_embeddings_not_copied": {
        "cell": "make_student",
        "test": "test_make_student",
        "message": "token_type_embeddings.weight are not copies",
        "code": _NEW_STUDENT + '''    embeddings, source = student.bert.embeddings, teacher.bert.embeddings
    embeddings.word_embeddings.load_state_dict(source.word_embeddings.state_dict())
    embeddings.position_embeddings.load_state_dict(source.position_embeddings.state_dict())
    embeddings.LayerNorm.load_state_dict(source.LayerNorm.state_dict())
''' + _COPY_LAYERS + _COPY_POOLER + _COPY_CLASSIFIER + '''    return student
''',
    },
    "student_layers_reversed": {
        "cell": "make_student",
        "test": "test_make_student",
        "message": "in reversed order",
        "code": _NEW_STUDENT + _COPY_EMBEDDINGS + '''    for i, t in enumerate(reversed(layers)):
        student.bert.encoder.layer[i].load_state_dict(teacher.bert.encoder.layer[t].state_dict())
''' + _COPY_POOLER + _COPY_CLASSIFIER + '''    return student
''',
    },
    "layers_argument_ignored": {
        "cell": "make_student",
        "test": "test_make_student",
        "message": "whatever `layers` says",
        "code": _NEW_STUDENT + _COPY_EMBEDDINGS + '''    for i in range(len(layers)):
        student.bert.encoder.layer[i].load_state_dict(teacher.bert.encoder.layer[2 * i].state_dict())
''' + _COPY_POOLER + _COPY_CLASSIFIER + '''    return student
''',
    },
    "config_depth_not_updated": {
        "cell": "make_student",
        "test": "test_make_student",
        "message": "its config says num_hidden_layers",
        "code": '''def make_student(teacher, layers):
    student = copy.deepcopy(teacher)
    student.bert.encoder.layer = nn.ModuleList([student.bert.encoder.layer[t] for t in layers])
    return student
''',
    },
    "teacher_cut_down_and_returned": {
        "cell": "make_student",
        "test": "test_make_student",
        "message": "returned the teacher itself",
        "code": '''def make_student(teacher, layers):
    teacher.bert.encoder.layer = nn.ModuleList([teacher.bert.encoder.layer[t] for t in layers])
    teacher.config.num_hidden_layers = len(layers)
    return teacher
''',
    },
    "config_built_from_defaults": {
        "cell": "make_student",
        "test": "test_make_student",
        "message": "keep the teacher's width",
        "code": '''def make_student(teacher, layers):
    config = type(teacher.config)(num_hidden_layers=len(layers), num_labels=teacher.config.num_labels)
    student = type(teacher)(config)
''' + _COPY_EMBEDDINGS + _COPY_LAYERS + _COPY_POOLER + _COPY_CLASSIFIER + '''    return student
''',
    },
    "teacher_left_in_train_mode": {
        "cell": "teacher_logits",
        "test": "test_teacher_logits",
        "message": "train mode \\(dropout on\\)",
        "code": _TEACHER_INPUTS + '''    with torch.no_grad():
        return teacher(**inputs).logits
''',
    },
    "teacher_gradients_enabled": {
        "cell": "teacher_logits",
        "test": "test_teacher_logits",
        "message": "gradients enabled",
        "code": _TEACHER_INPUTS + '''    teacher.eval()
    return teacher(**inputs).logits.detach()
''',
    },
    "logits_attribute_forgotten": {
        "cell": "teacher_logits",
        "test": "test_teacher_logits",
        "message": "output object",
        "code": _TEACHER_INPUTS + '''    teacher.eval()
    with torch.no_grad():
        return teacher(**inputs)
''',
    },
    "labels_passed_to_the_teacher": {
        "cell": "teacher_logits",
        "test": "test_teacher_logits",
        "message": "passed \\['labels'\\] to the teacher",
        "code": _TEACHER_INPUTS + '''    teacher.eval()
    with torch.no_grad():
        return teacher(**{k: v for k, v in batch.items() if k != "teacher_logits"}).logits
''',
    },
    "batch_modified": {
        "cell": "teacher_logits",
        "test": "test_teacher_logits",
        "message": "changed the batch",
        "code": '''def teacher_logits(teacher, batch):
    batch.pop("labels", None)
    batch.pop("teacher_logits", None)
    teacher.eval()
    with torch.no_grad():
        return teacher(**batch).logits
''',
    },
    "probabilities_returned": {
        "cell": "teacher_logits",
        "test": "test_teacher_logits",
        "message": "these are probabilities",
        "code": _TEACHER_INPUTS + '''    teacher.eval()
    with torch.no_grad():
        return torch.softmax(teacher(**inputs).logits, dim=-1)
''',
    },
    "attention_mask_dropped": {
        "cell": "teacher_logits",
        "test": "test_teacher_logits",
        "message": "without the batch's attention_mask",
        "code": _TEACHER_INPUTS + '''    teacher.eval()
    with torch.no_grad():
        return teacher(input_ids=inputs["input_ids"]).logits
''',
    },
    "teacher_mode_restored": {
        "cell": "teacher_logits",
        "test": "test_teacher_logits",
        "message": "left the teacher in train mode afterwards",
        "code": _TEACHER_INPUTS + '''    was_training = teacher.training
    teacher.eval()
    with torch.no_grad():
        logits = teacher(**inputs).logits
    teacher.train(was_training)
    return logits
''',
    },
    "lecture_no_grad_bug": {
        "cell": "distill_step",
        "test": "test_distill_step",
        "message": "no_grad",
        "code": _STEP_INPUTS + '''    student.train()
    with torch.no_grad():
        student_logits = student(**inputs).logits
''' + _COMBINED + '''    if loss.requires_grad:
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
        "code": _STEP_INPUTS + '''    student.train()
    z = student(**inputs).logits
    q = torch.softmax(batch["teacher_logits"] / temperature, dim=-1)
    soft = -(q * torch.log_softmax(z / temperature, dim=-1)).sum(-1).mean()
    hard = torch.nn.functional.cross_entropy(z, batch["labels"])
    loss = alpha * hard + (1 - alpha) * soft
''' + _UPDATE + '''    return loss.item()
''',
    },
    "zero_grad_missing": {
        "cell": "distill_step",
        "test": "test_distill_step",
        "message": "plus the previous call's",
        "code": _STEP_INPUTS + '''    student.train()
    student_logits = student(**inputs).logits
''' + _COMBINED + '''    loss.backward()
    optimizer.step()
    return loss.item()
''',
    },
    "zero_grad_between_backward_and_step": {
        "cell": "distill_step",
        "test": "test_distill_step",
        "message": "did not change the student's weights",
        "code": _STEP_INPUTS + '''    student.train()
    student_logits = student(**inputs).logits
''' + _COMBINED + '''    loss.backward()
    optimizer.zero_grad()
    optimizer.step()
    return loss.item()
''',
    },
    "teacher_logits_recomputed": {
        "cell": "distill_step",
        "test": "test_distill_step",
        "message": "recomputed the teacher's logits",
        "code": _STEP_INPUTS + '''    student.train()
    student_logits = student(**inputs).logits
    loss = combined_loss(student_logits, teacher_logits(teacher, batch), batch["labels"], alpha, temperature)
''' + _UPDATE + '''    return loss.item()
''',
    },
    "alpha_and_temperature_swapped": {
        "cell": "distill_step",
        "test": "test_distill_step",
        "message": "alpha and temperature swapped",
        "code": _STEP_INPUTS + '''    student.train()
    student_logits = student(**inputs).logits
    loss = combined_loss(student_logits, batch["teacher_logits"], batch["labels"], temperature, alpha)
''' + _UPDATE + '''    return loss.item()
''',
    },
    "one_minus_alpha_passed": {
        "cell": "distill_step",
        "test": "test_distill_step",
        "message": "was 1 - alpha passed",
        "code": _STEP_INPUTS + '''    student.train()
    student_logits = student(**inputs).logits
    loss = combined_loss(student_logits, batch["teacher_logits"], batch["labels"], 1 - alpha, temperature)
''' + _UPDATE + '''    return loss.item()
''',
    },
    "logits_swapped_in_the_call": {
        "cell": "distill_step",
        "test": "test_distill_step",
        "message": "swapped in the call",
        "code": _STEP_INPUTS + '''    student.train()
    student_logits = student(**inputs).logits
    loss = combined_loss(batch["teacher_logits"], student_logits, batch["labels"], alpha, temperature)
''' + _UPDATE + '''    return loss.item()
''',
    },
    "loss_tensor_returned": {
        "cell": "distill_step",
        "test": "test_distill_step",
        "message": "as a Python float",
        "code": _STEP_INPUTS + '''    student.train()
    student_logits = student(**inputs).logits
''' + _COMBINED + _UPDATE + '''    return loss
''',
    },
    "student_left_in_eval_mode": {
        "cell": "distill_step",
        "test": "test_distill_step",
        "message": "ran the student in eval mode",
        "code": _STEP_INPUTS + '''    student_logits = student(**inputs).logits
''' + _COMBINED + _UPDATE + '''    return loss.item()
''',
    },
}

# The example submissions shipped under examples/submissions/ (see compresslib.course.examples).
EXAMPLE_MISTAKE = "tensors_shared_not_copied"
