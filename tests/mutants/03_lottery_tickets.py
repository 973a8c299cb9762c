"""Held-out wrong answers for 03_lottery_tickets: plausible student mistakes that are NOT in the catalog
(``solutions/03_lottery_tickets/wrong_answers.py``) and that the judges were not written against.

Same entry format as the catalog (``cell``: the grade_id of the solution cell replaced, ``code``: what
the student wrote); no message: ``tests/test_grading_mutants.py`` only asserts that at least one
hidden test fails. The kill rate of this corpus measures how well the hidden tests generalise.
"""

MUTANTS = {
    # --- magnitude_mask ---------------------------------------------------------------------------
    "mm_quantile_threshold": {
        "cell": "magnitude_mask",
        "code": '''def magnitude_mask(weights, sparsity):
    all_w = torch.cat([w.detach().abs().flatten() for w in weights.values()])
    threshold = torch.quantile(all_w, sparsity)
    return {name: (w.detach().abs() > threshold).float() for name, w in weights.items()}
''',
    },
    "mm_kthvalue_breaks_at_zero_sparsity": {
        "cell": "magnitude_mask",
        "code": '''def magnitude_mask(weights, sparsity):
    scores = torch.cat([w.detach().abs().flatten() for w in weights.values()])
    k = int(round(sparsity * scores.numel()))
    t = torch.kthvalue(scores, k).values
    keep = (scores > t).float()
    ties = (scores == t).nonzero().flatten()
    n_below = int((scores < t).sum())
    keep[ties[k - n_below:]] = 1.0  # keep the later ties, prune the first ones
    out, i = {}, 0
    for name, w in weights.items():
        out[name] = keep[i:i + w.numel()].reshape(w.shape)
        i += w.numel()
    return out
''',
    },
    "mm_ceil_count": {
        "cell": "magnitude_mask",
        "code": '''import math


def magnitude_mask(weights, sparsity):
    flat = torch.cat([w.detach().abs().reshape(-1) for w in weights.values()])
    k = math.ceil(sparsity * flat.numel())
    order = torch.argsort(flat, stable=True)
    keep = torch.ones(flat.numel())
    keep[order[:k]] = 0
    masks = {}
    start = 0
    for name, w in weights.items():
        masks[name] = keep[start:start + w.numel()].view_as(w)
        start += w.numel()
    return masks
''',
    },
    "mm_truncated_count": {
        "cell": "magnitude_mask",
        "code": '''def magnitude_mask(weights, sparsity):
    scores = torch.cat([w.detach().abs().flatten() for w in weights.values()])
    n_prune = int(sparsity * len(scores))
    keep = torch.ones_like(scores)
    keep[torch.sort(scores, stable=True).indices[:n_prune]] = 0.0
    masks, offset = {}, 0
    for name, w in weights.items():
        masks[name] = keep[offset:offset + w.numel()].view(w.shape).clone()
        offset += w.numel()
    return masks
''',
    },
    "mm_prunes_largest": {
        "cell": "magnitude_mask",
        "code": '''def magnitude_mask(weights, sparsity):
    scores = torch.cat([w.detach().abs().flatten() for w in weights.values()])
    k = int(round(sparsity * scores.numel()))
    order = torch.sort(scores, descending=True, stable=True).indices
    keep = torch.ones_like(scores)
    keep[order[:k]] = 0.0
    masks, offset = {}, 0
    for name, w in weights.items():
        masks[name] = keep[offset:offset + w.numel()].view(w.shape).clone()
        offset += w.numel()
    return masks
''',
    },
    "mm_names_sorted": {
        "cell": "magnitude_mask",
        "code": '''def magnitude_mask(weights, sparsity):
    names = sorted(weights)
    scores = torch.cat([weights[n].detach().abs().flatten() for n in names])
    k = int(round(sparsity * scores.numel()))
    keep = torch.ones_like(scores)
    keep[torch.sort(scores, stable=True).indices[:k]] = 0.0
    masks, offset = {}, 0
    for n in names:
        size = weights[n].numel()
        masks[n] = keep[offset:offset + size].view(weights[n].shape)
        offset += size
    return masks
''',
    },
    "mm_abs_in_place": {
        "cell": "magnitude_mask",
        "code": '''def magnitude_mask(weights, sparsity):
    flat = []
    for w in weights.values():
        flat.append(w.detach().abs_().flatten())  # magnitudes
    scores = torch.cat(flat)
    k = int(round(sparsity * scores.numel()))
    keep = torch.ones_like(scores)
    keep[torch.sort(scores, stable=True).indices[:k]] = 0.0
    masks, offset = {}, 0
    for name, w in weights.items():
        masks[name] = keep[offset:offset + w.numel()].view(w.shape).clone()
        offset += w.numel()
    return masks
''',
    },
    # --- prune_remaining --------------------------------------------------------------------------
    "pr_truncated_count": {
        "cell": "prune_remaining",
        "code": '''def prune_remaining(weights, fraction, previous):
    n = sum(w.numel() for w in weights.values())
    already = sum(int((previous[name] == 0).sum()) for name in weights)
    k = already + int(fraction * (n - already))
    return magnitude_mask({name: w.detach() * previous[name] for name, w in weights.items()}, k / n)
''',
    },
    "pr_shallow_copy_edits_previous": {
        "cell": "prune_remaining",
        "code": '''def prune_remaining(weights, fraction, previous):
    new_mask = dict(previous)
    names = list(weights)
    scores = torch.cat([(weights[n].detach().abs() * previous[n]).flatten() for n in names])
    alive = torch.cat([previous[n].flatten() for n in names]).bool()
    n_new = int(round(fraction * int(alive.sum())))
    candidates = alive.nonzero().flatten()
    order = candidates[torch.sort(scores[candidates], stable=True).indices][:n_new]
    offset = 0
    for n in names:
        size = weights[n].numel()
        local = order[(order >= offset) & (order < offset + size)] - offset
        new_mask[n].view(-1)[local] = 0.0
        offset += size
    return new_mask
''',
    },
    "pr_counts_nonzero_weights": {
        "cell": "prune_remaining",
        "code": '''def prune_remaining(weights, fraction, previous):
    n = sum(w.numel() for w in weights.values())
    remaining = sum(int((w != 0).sum()) for w in weights.values())
    k = (n - remaining) + int(round(fraction * remaining))
    return magnitude_mask({name: w.detach() * previous[name] for name, w in weights.items()}, k / n)
''',
    },
    "pr_infinity_without_and": {
        "cell": "prune_remaining",
        "code": '''def prune_remaining(weights, fraction, previous):
    names = list(weights)
    scores = torch.cat([weights[n].detach().abs().flatten() for n in names])
    alive = torch.cat([previous[n].flatten() for n in names])
    scores[alive == 0] = float("inf")
    k = int(round(fraction * int(alive.sum())))
    keep = torch.ones_like(scores)
    keep[torch.sort(scores, stable=True).indices[:k]] = 0.0
    out, offset = {}, 0
    for n in names:
        out[n] = keep[offset:offset + weights[n].numel()].view(weights[n].shape)
        offset += weights[n].numel()
    return out
''',
    },
    "pr_fraction_kept": {
        "cell": "prune_remaining",
        "code": '''def prune_remaining(weights, fraction, previous):
    n = sum(w.numel() for w in weights.values())
    n_pruned = sum(int((previous[name] == 0).sum()) for name in weights)
    n_left = n - n_pruned
    k = n_pruned + int(round((1 - fraction) * n_left))
    return magnitude_mask({name: w.detach() * previous[name] for name, w in weights.items()}, k / n)
''',
    },
    # --- apply_mask, train_with_mask --------------------------------------------------------------
    "tw_own_optimizer": {
        "cell": "train_with_mask",
        "code": '''def apply_mask(model, mask):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name in mask:
                p.mul_(mask[name])
    return model


def train_with_mask(model, mask, optimizer, batches):
    apply_mask(model, mask)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for x, y in batches:
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        apply_mask(model, mask)
    return model
''',
    },
    "tw_zero_grad_after_backward": {
        "cell": "train_with_mask",
        "code": '''def apply_mask(model, mask):
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, m in mask.items():
            params[name].mul_(m)
    return model


def train_with_mask(model, mask, optimizer, batches):
    model.train()
    apply_mask(model, mask)
    for x, y in batches:
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.zero_grad()
        optimizer.step()
        apply_mask(model, mask)
    return model
''',
    },
    "tw_first_batch_only": {
        "cell": "train_with_mask",
        "code": '''def apply_mask(model, mask):
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, m in mask.items():
            params[name].mul_(m.to(params[name].dtype))
    return model


def train_with_mask(model, mask, optimizer, batches):
    apply_mask(model, mask)
    model.train()
    x, y = batches[0]
    for _ in range(len(batches)):
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
        apply_mask(model, mask)
    return model
''',
    },
    "tw_mask_only_at_the_end": {
        "cell": "train_with_mask",
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
    apply_mask(model, mask)  # prune again once training is done
    return model
''',
    },
    "tw_nll_on_logits": {
        "cell": "train_with_mask",
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
        loss = F.nll_loss(model(x), y)
        loss.backward()
        optimizer.step()
        apply_mask(model, mask)
    return model
''',
    },
    "tw_mask_entries_turned_bool": {
        "cell": "train_with_mask",
        "code": '''def apply_mask(model, mask):
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name in mask:
            mask[name] = mask[name].bool()
            params[name][~mask[name]] = 0.0
    return model


def train_with_mask(model, mask, optimizer, batches):
    apply_mask(model, mask)
    model.train()
    for x, y in batches:
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
        apply_mask(model, mask)
    return model
''',
    },
    # --- imp_round --------------------------------------------------------------------------------
    "ir_parameters_alias_theta0": {
        "cell": "imp_round",
        "code": '''def imp_round(model, theta0, mask, fraction, train):
    train(model, mask)
    trained = {name: p.detach().clone() for name, p in model.named_parameters() if name in mask}
    new_mask = prune_remaining(trained, fraction, mask)
    for name, p in model.named_parameters():
        p.data = theta0[name]
    apply_mask(model, new_mask)
    return new_mask
''',
    },
    "ir_rewinds_a_copy": {
        "cell": "imp_round",
        "code": '''import copy


def imp_round(model, theta0, mask, fraction, train):
    train(model, mask)
    params = dict(model.named_parameters())
    new_mask = prune_remaining({n: params[n].detach() for n in mask}, fraction, mask)
    ticket = copy.deepcopy(model)
    ticket.load_state_dict(theta0)
    apply_mask(ticket, new_mask)
    model = ticket
    return new_mask
''',
    },
    "ir_loads_theta0_before_pruning": {
        "cell": "imp_round",
        "code": '''def imp_round(model, theta0, mask, fraction, train):
    train(model, mask)
    model.load_state_dict(theta0)
    params = dict(model.named_parameters())
    new_mask = prune_remaining({name: params[name].detach() for name in mask}, fraction, mask)
    apply_mask(model, new_mask)
    return new_mask
''',
    },
    "ir_trains_the_ticket_again": {
        "cell": "imp_round",
        "code": '''def imp_round(model, theta0, mask, fraction, train):
    train(model, mask)
    params = dict(model.named_parameters())
    new_mask = prune_remaining({name: params[name].detach() for name in mask}, fraction, mask)
    model.load_state_dict(theta0)
    apply_mask(model, new_mask)
    train(model, new_mask)  # train the new ticket
    return new_mask
''',
    },
    "ir_only_pruned_layers_rewound": {
        "cell": "imp_round",
        "code": '''def imp_round(model, theta0, mask, fraction, train):
    train(model, mask)
    params = dict(model.named_parameters())
    new_mask = prune_remaining({name: params[name].detach() for name in mask}, fraction, mask)
    with torch.no_grad():
        for name in mask:
            layer = name.rsplit(".", 1)[0]
            params[name].copy_(theta0[name] * new_mask[name])
            params[layer + ".bias"].copy_(theta0[layer + ".bias"])
    return new_mask
''',
    },
}
