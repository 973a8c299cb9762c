"""Held-out wrong answers to notebook 01, outside the catalog: written as students write them, never
used to design the hidden tests' messages. Each must lose points (tests/test_grading_mutants.py)."""

MUTANTS = {
    "softmax_ignores_dim_argument": {"cell": "softmax_with_temperature", "code": '''def softmax_with_temperature(logits, temperature, dim=-1):
    return torch.softmax(logits / temperature, dim=-1)
'''},
    "softmax_power_of_probabilities": {"cell": "softmax_with_temperature", "code": '''def softmax_with_temperature(logits, temperature, dim=-1):
    return torch.softmax(logits, dim=dim) ** (1 / temperature)
'''},
    "softmax_normalised_over_everything": {"cell": "softmax_with_temperature", "code": '''def softmax_with_temperature(logits, temperature, dim=-1):
    e = torch.exp(logits / temperature - (logits / temperature).max())
    return e / e.sum()
'''},
    "softmax_global_max_shift": {"cell": "softmax_with_temperature", "code": '''def softmax_with_temperature(logits, temperature, dim=-1):
    scaled = logits / temperature
    e = torch.exp(scaled - scaled.max())
    return e / e.sum(dim=dim, keepdim=True)
'''},
    "softmax_detached": {"cell": "softmax_with_temperature", "code": '''def softmax_with_temperature(logits, temperature, dim=-1):
    return torch.softmax(logits.detach() / temperature, dim=dim)
'''},
    "softmax_in_place_division": {"cell": "softmax_with_temperature", "code": '''def softmax_with_temperature(logits, temperature, dim=-1):
    logits /= temperature
    return torch.softmax(logits, dim=dim)
'''},
    "softmax_through_numpy": {"cell": "softmax_with_temperature", "code": '''def softmax_with_temperature(logits, temperature, dim=-1):
    import numpy as np
    z = logits.detach().numpy() / temperature
    e = np.exp(z - z.max(axis=dim, keepdims=True))
    return torch.tensor(e / e.sum(axis=dim, keepdims=True))
'''},
    "softmax_returns_log_probabilities": {"cell": "softmax_with_temperature", "code": '''def softmax_with_temperature(logits, temperature, dim=-1):
    return torch.log_softmax(logits / temperature, dim=dim)
'''},
    "softmax_divides_probabilities": {"cell": "softmax_with_temperature", "code": '''def softmax_with_temperature(logits, temperature, dim=-1):
    return torch.softmax(logits, dim=dim) / temperature
'''},
    "loss_naive_log_of_softmax": {"cell": "distillation_loss", "code": '''def distillation_loss(student_logits, teacher_logits, temperature):
    p = torch.softmax(student_logits / temperature, dim=-1)
    q = torch.softmax(teacher_logits / temperature, dim=-1)
    return -(q * torch.log(p)).sum(dim=-1).mean() * temperature**2
'''},
    "loss_mean_over_all_elements": {"cell": "distillation_loss", "code": '''def distillation_loss(student_logits, teacher_logits, temperature):
    log_p = F.log_softmax(student_logits / temperature, dim=-1)
    q = torch.softmax(teacher_logits / temperature, dim=-1)
    return -(q * log_p).mean() * temperature**2
'''},
    "loss_sums_over_the_batch_axis": {"cell": "distillation_loss", "code": '''def distillation_loss(student_logits, teacher_logits, temperature):
    log_p = F.log_softmax(student_logits / temperature, dim=-1)
    q = torch.softmax(teacher_logits / temperature, dim=-1)
    return -(q * log_p).sum(dim=0).mean() * temperature**2
'''},
    "loss_student_detached": {"cell": "distillation_loss", "code": '''def distillation_loss(student_logits, teacher_logits, temperature):
    log_p = F.log_softmax(student_logits.detach() / temperature, dim=-1)
    q = torch.softmax(teacher_logits / temperature, dim=-1)
    return -(q * log_p).sum(dim=-1).mean() * temperature**2
'''},
    "loss_temperature_outside_log_softmax": {"cell": "distillation_loss", "code": '''def distillation_loss(student_logits, teacher_logits, temperature):
    log_p = F.log_softmax(student_logits, dim=-1) / temperature
    q = torch.softmax(teacher_logits / temperature, dim=-1)
    return -(q * log_p).sum(dim=-1).mean() * temperature**2
'''},
    "loss_kl_div_mean_reduction": {"cell": "distillation_loss", "code": '''def distillation_loss(student_logits, teacher_logits, temperature):
    log_p = F.log_softmax(student_logits / temperature, dim=-1)
    q = torch.softmax(teacher_logits / temperature, dim=-1)
    return F.kl_div(log_p, q, reduction="mean") * temperature**2
'''},
    "loss_divides_by_n_twice": {"cell": "distillation_loss", "code": '''def distillation_loss(student_logits, teacher_logits, temperature):
    log_p = F.log_softmax(student_logits / temperature, dim=-1)
    q = torch.softmax(teacher_logits / temperature, dim=-1)
    return -(q * log_p).sum(dim=-1).mean() / len(student_logits) * temperature**2
'''},
    "combined_nll_on_raw_logits": {"cell": "combined_loss", "code": '''def combined_loss(student_logits, teacher_logits, labels, alpha, temperature):
    hard = F.nll_loss(student_logits, labels)
    return alpha * hard + (1 - alpha) * distillation_loss(student_logits, teacher_logits, temperature)
'''},
    "combined_hard_loss_detached": {"cell": "combined_loss", "code": '''def combined_loss(student_logits, teacher_logits, labels, alpha, temperature):
    hard = F.cross_entropy(student_logits.detach(), labels)
    return alpha * hard + (1 - alpha) * distillation_loss(student_logits, teacher_logits, temperature)
'''},
    "combined_hard_loss_on_teacher": {"cell": "combined_loss", "code": '''def combined_loss(student_logits, teacher_logits, labels, alpha, temperature):
    hard = F.cross_entropy(teacher_logits, labels)
    return alpha * hard + (1 - alpha) * distillation_loss(student_logits, teacher_logits, temperature)
'''},
    "combined_soft_at_temperature_one": {"cell": "combined_loss", "code": '''def combined_loss(student_logits, teacher_logits, labels, alpha, temperature):
    hard = F.cross_entropy(student_logits, labels)
    return alpha * hard + (1 - alpha) * distillation_loss(student_logits, teacher_logits, 1.0)
'''},
    "kd_step_student_left_in_eval": {"cell": "kd_step", "code": '''def kd_step(teacher, student, batch, optimizer, *, temperature, alpha):
    inputs = {key: value for key, value in batch.items() if key != "labels"}
    teacher.eval()
    with torch.no_grad():
        teacher_logits = teacher(**inputs)
    student_logits = student(**inputs)
    loss = combined_loss(student_logits, teacher_logits, batch["labels"], alpha, temperature)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()
'''},
    "kd_step_steps_before_backward": {"cell": "kd_step", "code": '''def kd_step(teacher, student, batch, optimizer, *, temperature, alpha):
    inputs = {key: value for key, value in batch.items() if key != "labels"}
    teacher.eval()
    with torch.no_grad():
        teacher_logits = teacher(**inputs)
    student.train()
    loss = combined_loss(student(**inputs), teacher_logits, batch["labels"], alpha, temperature)
    optimizer.zero_grad()
    optimizer.step()
    loss.backward()
    return loss.item()
'''},
    "kd_step_zero_grad_between_backward_and_step": {"cell": "kd_step", "code": '''def kd_step(teacher, student, batch, optimizer, *, temperature, alpha):
    inputs = {key: value for key, value in batch.items() if key != "labels"}
    teacher.eval()
    with torch.no_grad():
        teacher_logits = teacher(**inputs)
    student.train()
    loss = combined_loss(student(**inputs), teacher_logits, batch["labels"], alpha, temperature)
    loss.backward()
    optimizer.zero_grad()
    optimizer.step()
    return loss.item()
'''},
    "kd_step_arguments_swapped": {"cell": "kd_step", "code": '''def kd_step(teacher, student, batch, optimizer, *, temperature, alpha):
    inputs = {key: value for key, value in batch.items() if key != "labels"}
    teacher.eval()
    with torch.no_grad():
        teacher_logits = teacher(**inputs)
    student.train()
    loss = combined_loss(student(**inputs), teacher_logits, batch["labels"], temperature, alpha)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()
'''},
    "kd_step_teacher_logits_from_the_student": {"cell": "kd_step", "code": '''def kd_step(teacher, student, batch, optimizer, *, temperature, alpha):
    inputs = {key: value for key, value in batch.items() if key != "labels"}
    teacher.eval()
    student.train()
    student_logits = student(**inputs)
    with torch.no_grad():
        teacher(**inputs)
    loss = combined_loss(student_logits, student_logits.detach(), batch["labels"], alpha, temperature)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()
'''},
    "kd_step_loss_after_the_step": {"cell": "kd_step", "code": '''def kd_step(teacher, student, batch, optimizer, *, temperature, alpha):
    inputs = {key: value for key, value in batch.items() if key != "labels"}
    teacher.eval()
    with torch.no_grad():
        teacher_logits = teacher(**inputs)
    student.train()
    loss = combined_loss(student(**inputs), teacher_logits, batch["labels"], alpha, temperature)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        after = combined_loss(student(**inputs), teacher_logits, batch["labels"], alpha, temperature)
    return after.item()
'''},
}
