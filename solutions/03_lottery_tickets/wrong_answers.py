"""Catalogued wrong answers for 03_lottery_tickets: the mistakes students plausibly make.

Each entry replaces one solution cell (``cell``) of a complete submission. CI autogrades every entry
with nbgrader and checks that the test cell ``test`` loses its points and that its feedback says
``message`` (a regular expression), i.e. names the mistake, while every other test cell keeps its
points. Not released to students (nbgrader ignores ``*.py`` in the source folder).
"""

_SPLIT = '''    masks, offset = {}, 0
    for name, w in weights.items():
        masks[name] = keep[offset : offset + w.numel()].view(w.shape).clone()
        offset += w.numel()
    return masks
'''

WRONG_ANSWERS = {
    "signed_pruning": {
        "cell": "magnitude_mask",
        "test": "test_magnitude_mask",
        "message": "rank by magnitude",
        "code": '''def magnitude_mask(weights, sparsity):
    scores = torch.cat([w.detach().flatten() for w in weights.values()])
    k = int(round(sparsity * scores.numel()))
    keep = torch.ones_like(scores)
    keep[torch.sort(scores, stable=True).indices[:k]] = 0.0
''' + _SPLIT,
    },
    "threshold_keeps_ties": {
        "cell": "magnitude_mask",
        "test": "test_magnitude_mask",
        "message": r"not \|w\| >= t",
        "code": '''def magnitude_mask(weights, sparsity):
    scores = torch.cat([w.detach().abs().flatten() for w in weights.values()])
    k = int(round(sparsity * scores.numel()))
    t = torch.sort(scores).values[k - 1]
    keep = (scores >= t).float()
''' + _SPLIT,
    },
    "threshold_prunes_all_ties": {
        "cell": "magnitude_mask",
        "test": "test_magnitude_mask",
        "message": "tied at the threshold was pruned",
        "code": '''def magnitude_mask(weights, sparsity):
    scores = torch.cat([w.detach().abs().flatten() for w in weights.values()])
    k = int(round(sparsity * scores.numel()))
    t = torch.sort(scores).values[k - 1]
    keep = (scores > t).float()
''' + _SPLIT,
    },
    "fraction_of_all_weights": {
        "cell": "prune_remaining",
        "test": "test_prune_remaining",
        "message": "fraction of the \\*remaining\\* weights",
        "code": '''def prune_remaining(weights, fraction, previous):
    return magnitude_mask(weights, fraction)
''',
    },
    "mask_applied_once": {
        "cell": "train_with_mask",
        "test": "test_train_with_mask",
        "message": "applied once",
        "code": '''def apply_mask(model, mask):
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, m in mask.items():
            params[name].mul_(m.to(params[name].dtype))
    return model


def train_with_mask(model, mask, optimizer, batches):
    apply_mask(model, mask)
    model.train()
    for x, y in batches:
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
    return model
''',
    },
    "rewind_drops_mask": {
        "cell": "imp_round",
        "test": "test_imp_round",
        "message": "non-zero again",
        "code": '''def imp_round(model, theta0, mask, fraction, train):
    train(model, mask)
    params = dict(model.named_parameters())
    new_mask = prune_remaining({name: params[name].detach() for name in mask}, fraction, mask)
    model.load_state_dict(theta0)
    return new_mask
''',
    },
    "rewind_to_final_weights": {
        "cell": "imp_round",
        "test": "test_imp_round",
        "message": "initial",
        "code": '''def imp_round(model, theta0, mask, fraction, train):
    train(model, mask)
    params = dict(model.named_parameters())
    new_mask = prune_remaining({name: params[name].detach() for name in mask}, fraction, mask)
    apply_mask(model, new_mask)
    return new_mask
''',
    },
}

# The example submissions shipped under examples/submissions/ (see compresslib.course.examples).
EXAMPLE_MISTAKE = "threshold_keeps_ties"
