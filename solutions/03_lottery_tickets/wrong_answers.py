"""Catalogued wrong answers for 03_lottery_tickets: the mistakes students plausibly make.

Each entry replaces one solution cell (``cell``) of a complete submission. The tests grade every entry
(``tests/test_grading_lottery.py``, in-process) and check that the test cell ``test`` loses its points
and that its feedback says ``message`` (a regular expression), i.e. names the mistake, while every
other test cell keeps its points. The messages themselves live with the judges
(``compresslib/grading/lottery_tickets.py``). Not released to students (nbgrader ignores ``*.py`` in
the source folder).
"""

_SPLIT = '''    masks, offset = {}, 0
    for name, w in weights.items():
        masks[name] = keep[offset : offset + w.numel()].view(w.shape).clone()
        offset += w.numel()
    return masks
'''

_APPLY = '''def apply_mask(model, mask):
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, m in mask.items():
            params[name].mul_(m.to(params[name].dtype))
    return model
'''

_TRAIN = '''

def train_with_mask(model, mask, optimizer, batches):
    apply_mask(model, mask)
    model.train()
    for x, y in batches:
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
        apply_mask(model, mask)
    return model
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
        "message": r"was kept \(\|w\| >= t\)",
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
        "code": _APPLY + '''

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

    # --- magnitude_mask ---------------------------------------------------------------------------
    "per_layer_ranking": {
        "cell": "magnitude_mask",
        "test": "test_magnitude_mask",
        "message": "each tensor was pruned to the sparsity on its own",
        "code": '''def magnitude_mask(weights, sparsity):
    masks = {}
    for name, w in weights.items():
        scores = w.detach().abs().flatten()
        k = int(round(sparsity * scores.numel()))
        keep = torch.ones_like(scores)
        keep[torch.sort(scores, stable=True).indices[:k]] = 0.0
        masks[name] = keep.view(w.shape)
    return masks
''',
    },
    "mask_inverted": {
        "cell": "magnitude_mask",
        "test": "test_magnitude_mask",
        "message": "the mask is inverted",
        "code": '''def magnitude_mask(weights, sparsity):
    scores = torch.cat([w.detach().abs().flatten() for w in weights.values()])
    k = int(round(sparsity * scores.numel()))
    keep = torch.zeros_like(scores)
    keep[torch.sort(scores, stable=True).indices[:k]] = 1.0  # mark the pruned weights
''' + _SPLIT,
    },
    "ties_latest_first": {
        "cell": "magnitude_mask",
        "test": "test_magnitude_mask",
        "message": "ties were broken from the last position",
        "code": '''def magnitude_mask(weights, sparsity):
    scores = torch.cat([w.detach().abs().flatten() for w in weights.values()])
    k = int(round(sparsity * scores.numel()))
    keep = torch.ones_like(scores)
    keep[torch.sort(scores, stable=True, descending=True).indices[scores.numel() - k:]] = 0.0
''' + _SPLIT,
    },
    "bool_mask": {
        "cell": "magnitude_mask",
        "test": "test_magnitude_mask",
        "message": "is a bool tensor: return float masks",
        "code": '''def magnitude_mask(weights, sparsity):
    scores = torch.cat([w.detach().abs().flatten() for w in weights.values()])
    k = int(round(sparsity * scores.numel()))
    keep = torch.ones_like(scores, dtype=torch.bool)
    keep[torch.sort(scores, stable=True).indices[:k]] = False
''' + _SPLIT,
    },
    "weights_modified": {
        "cell": "magnitude_mask",
        "test": "test_magnitude_mask",
        "message": "modified the weights it was given",
        "code": '''def magnitude_mask(weights, sparsity):
    scores = torch.cat([w.detach().abs().flatten() for w in weights.values()])
    k = int(round(sparsity * scores.numel()))
    keep = torch.ones_like(scores)
    keep[torch.sort(scores, stable=True).indices[:k]] = 0.0
    masks, offset = {}, 0
    for name, w in weights.items():
        masks[name] = keep[offset : offset + w.numel()].view(w.shape).clone()
        w.mul_(masks[name])  # prune the weights too
        offset += w.numel()
    return masks
''',
    },
    "masks_flattened": {
        "cell": "magnitude_mask",
        "test": "test_magnitude_mask",
        "message": "give each mask its weight's shape",
        "code": '''def magnitude_mask(weights, sparsity):
    scores = torch.cat([w.detach().abs().flatten() for w in weights.values()])
    k = int(round(sparsity * scores.numel()))
    keep = torch.ones_like(scores)
    keep[torch.sort(scores, stable=True).indices[:k]] = 0.0
    masks, offset = {}, 0
    for name, w in weights.items():
        masks[name] = keep[offset : offset + w.numel()].clone()
        offset += w.numel()
    return masks
''',
    },
    # --- prune_remaining --------------------------------------------------------------------------
    "fraction_of_total_added": {
        "cell": "prune_remaining",
        "test": "test_prune_remaining",
        "message": r"round\(fraction \* n\) more weights were pruned",
        "code": '''def prune_remaining(weights, fraction, previous):
    n = sum(w.numel() for w in weights.values())
    n_pruned = sum(int((previous[name] == 0).sum()) for name in weights)
    k = n_pruned + int(round(fraction * n))
    return magnitude_mask({name: w.detach() * previous[name] for name, w in weights.items()}, k / n)
''',
    },
    "ignores_previous": {
        "cell": "prune_remaining",
        "test": "test_prune_remaining",
        "message": "weights the previous mask pruned are kept again",
        "code": '''def prune_remaining(weights, fraction, previous):
    n = sum(w.numel() for w in weights.values())
    n_pruned = sum(int((previous[name] == 0).sum()) for name in weights)
    k = n_pruned + int(round(fraction * (n - n_pruned)))
    return magnitude_mask(weights, k / n)  # the pruned weights are 0 after training anyway
''',
    },
    "counts_only_new": {
        "cell": "prune_remaining",
        "test": "test_prune_remaining",
        "message": "some pruned weights came back",
        "code": '''def prune_remaining(weights, fraction, previous):
    n = sum(w.numel() for w in weights.values())
    n_remaining = sum(int(previous[name].sum()) for name in weights)
    k = int(round(fraction * n_remaining))
    return magnitude_mask({name: w.detach() * previous[name] for name, w in weights.items()}, k / n)
''',
    },
    "per_layer_remaining": {
        "cell": "prune_remaining",
        "test": "test_prune_remaining",
        "message": "each tensor was pruned by the fraction on its own",
        "code": '''def prune_remaining(weights, fraction, previous):
    masks = {}
    for name, w in weights.items():
        n = w.numel()
        n_pruned = int((previous[name] == 0).sum())
        k = n_pruned + int(round(fraction * (n - n_pruned)))
        masks[name] = magnitude_mask({name: w.detach() * previous[name]}, k / n)[name]
    return masks
''',
    },
    "weights_zeroed_in_place": {
        "cell": "prune_remaining",
        "test": "test_prune_remaining",
        "message": "modified the weights it was given",
        "code": '''def prune_remaining(weights, fraction, previous):
    n = sum(w.numel() for w in weights.values())
    n_pruned = sum(int((previous[name] == 0).sum()) for name in weights)
    k = n_pruned + int(round(fraction * (n - n_pruned)))
    for name, w in weights.items():
        w *= previous[name]  # the pruned weights rank first
    return magnitude_mask(weights, k / n)
''',
    },
    "previous_mutated": {
        "cell": "prune_remaining",
        "test": "test_prune_remaining",
        "message": "modified the previous mask in place",
        "code": '''def prune_remaining(weights, fraction, previous):
    n = sum(w.numel() for w in weights.values())
    n_pruned = sum(int((previous[name] == 0).sum()) for name in weights)
    k = n_pruned + int(round(fraction * (n - n_pruned)))
    new = magnitude_mask({name: w.detach() * previous[name] for name, w in weights.items()}, k / n)
    for name in previous:
        previous[name].mul_(new[name])
    return previous
''',
    },
    # --- apply_mask, train_with_mask --------------------------------------------------------------
    "mask_not_applied_first": {
        "cell": "train_with_mask",
        "test": "test_train_with_mask",
        "message": "apply the mask before the first step",
        "code": _APPLY + '''

def train_with_mask(model, mask, optimizer, batches):
    model.train()
    for x, y in batches:
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
        apply_mask(model, mask)
    return model
''',
    },
    "mask_before_step": {
        "cell": "train_with_mask",
        "test": "test_train_with_mask",
        "message": r"applied before optimizer.step\(\)",
        "code": _APPLY + '''

def train_with_mask(model, mask, optimizer, batches):
    apply_mask(model, mask)
    model.train()
    for x, y in batches:
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        apply_mask(model, mask)
        optimizer.step()
    return model
''',
    },
    "grads_masked_only": {
        "cell": "train_with_mask",
        "test": "test_train_with_mask",
        "message": "momentum from earlier steps",
        "code": _APPLY + '''

def train_with_mask(model, mask, optimizer, batches):
    apply_mask(model, mask)
    model.train()
    params = dict(model.named_parameters())
    for x, y in batches:
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        with torch.no_grad():
            for name, m in mask.items():
                params[name].grad.mul_(m)  # no gradient, no update
        optimizer.step()
    return model
''',
    },
    "no_zero_grad": {
        "cell": "train_with_mask",
        "test": "test_train_with_mask",
        "message": r"optimizer.zero_grad\(\)",
        "code": _APPLY + '''

def train_with_mask(model, mask, optimizer, batches):
    apply_mask(model, mask)
    model.train()
    for x, y in batches:
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
        apply_mask(model, mask)
    return model
''',
    },
    "one_step_for_all_batches": {
        "cell": "train_with_mask",
        "test": "test_train_with_mask",
        "message": "one step per",
        "code": _APPLY + '''

def train_with_mask(model, mask, optimizer, batches):
    apply_mask(model, mask)
    model.train()
    optimizer.zero_grad()
    loss = sum(F.cross_entropy(model(x), y) for x, y in batches)
    loss.backward()
    optimizer.step()
    apply_mask(model, mask)
    return model
''',
    },
    "no_train_mode": {
        "cell": "train_with_mask",
        "test": "test_train_with_mask",
        "message": "eval mode",
        "code": _APPLY + '''

def train_with_mask(model, mask, optimizer, batches):
    apply_mask(model, mask)
    for x, y in batches:
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
        apply_mask(model, mask)
    return model
''',
    },
    "apply_mask_rebinds": {
        "cell": "train_with_mask",
        "test": "test_train_with_mask",
        "message": "left the model's weights unchanged",
        "code": '''def apply_mask(model, mask):
    for name, p in model.named_parameters():
        if name in mask:
            p = p * mask[name]
    return model
''' + _TRAIN,
    },
    "apply_mask_without_no_grad": {
        "cell": "train_with_mask",
        "test": "test_train_with_mask",
        "message": r"under torch.no_grad\(\)",
        "code": '''def apply_mask(model, mask):
    params = dict(model.named_parameters())
    for name, m in mask.items():
        params[name].mul_(m)
    return model
''' + _TRAIN,
    },
    # --- imp_round --------------------------------------------------------------------------------
    "no_training": {
        "cell": "imp_round",
        "test": "test_imp_round",
        "message": "never called train",
        "code": '''def imp_round(model, theta0, mask, fraction, train):
    params = dict(model.named_parameters())
    new_mask = prune_remaining({name: params[name].detach() for name in mask}, fraction, mask)
    model.load_state_dict(theta0)
    apply_mask(model, new_mask)
    return new_mask
''',
    },
    "prunes_before_training": {
        "cell": "imp_round",
        "test": "test_imp_round",
        "message": "computed from the weights before training",
        "code": '''def imp_round(model, theta0, mask, fraction, train):
    params = dict(model.named_parameters())
    new_mask = prune_remaining({name: params[name].detach() for name in mask}, fraction, mask)
    train(model, mask)
    model.load_state_dict(theta0)
    apply_mask(model, new_mask)
    return new_mask
''',
    },
    "imp_fraction_of_all": {
        "cell": "imp_round",
        "test": "test_imp_round",
        "message": "fraction was taken of all the prunable weights",
        "code": '''def imp_round(model, theta0, mask, fraction, train):
    train(model, mask)
    params = dict(model.named_parameters())
    new_mask = magnitude_mask({name: params[name].detach() for name in mask}, fraction)
    model.load_state_dict(theta0)
    apply_mask(model, new_mask)
    return new_mask
''',
    },
    "returns_old_mask": {
        "cell": "imp_round",
        "test": "test_imp_round",
        "message": "returned the mask it was given",
        "code": '''def imp_round(model, theta0, mask, fraction, train):
    train(model, mask)
    params = dict(model.named_parameters())
    new_mask = prune_remaining({name: params[name].detach() for name in mask}, fraction, mask)
    model.load_state_dict(theta0)
    apply_mask(model, new_mask)
    return mask
''',
    },
    "biases_not_rewound": {
        "cell": "imp_round",
        "test": "test_imp_round",
        "message": r"parameters outside the mask \(biases, the classifier\)",
        "code": '''def imp_round(model, theta0, mask, fraction, train):
    train(model, mask)
    params = dict(model.named_parameters())
    new_mask = prune_remaining({name: params[name].detach() for name in mask}, fraction, mask)
    with torch.no_grad():
        for name in mask:
            params[name].copy_(theta0[name])
    apply_mask(model, new_mask)
    return new_mask
''',
    },
    "theta0_mutated": {
        "cell": "imp_round",
        "test": "test_imp_round",
        "message": "modified theta0",
        "code": '''def imp_round(model, theta0, mask, fraction, train):
    train(model, mask)
    params = dict(model.named_parameters())
    new_mask = prune_remaining({name: params[name].detach() for name in mask}, fraction, mask)
    for name, m in new_mask.items():
        theta0[name].mul_(m)  # the ticket: m * theta0
    model.load_state_dict(theta0)
    return new_mask
''',
    },
}

# The example submissions shipped under examples/submissions/ (see compresslib.course.examples).
EXAMPLE_MISTAKE = "threshold_keeps_ties"
