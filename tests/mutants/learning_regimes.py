"""Common mistakes in 16_learning_regimes."""
import math

import torch
import torch.nn.functional as F

from llmlab.grading import learning_regimes as grade
from llmlab.nn import lstm
from llmlab.regimes import augmentation, continual, cross_validation, multitask, noisy_labels, scaling
from tests.mutants import mistake

REFERENCE = {
    "check_kfold_indices": cross_validation.kfold_indices,
    "check_flip_labels": noisy_labels.flip_labels,
    "check_token_dropout": augmentation.token_dropout,
    "check_multitask_loss": multitask.multitask_loss,
    "check_lstm_cell": lstm.lstm_cell,
    "check_lstm_forward": lstm.lstm_forward,
    "check_replay_batch": continual.replay_batch,
    "check_fit_power_law": scaling.fit_power_law,
}


# kfold_indices
def _cut(perm, sizes):
    folds, start = [], 0
    for size in sizes:
        folds.append((torch.cat([perm[:start], perm[start + size:]]), perm[start : start + size]))
        start += size
    return folds


@mistake("check_kfold_indices", "nothing was shuffled")
def kfold_no_shuffle(n, k, seed=0):
    return _cut(torch.arange(n), [n // k + (j < n % k) for j in range(k)])


@mistake("check_kfold_indices", "same seed gave different folds")
def kfold_global_rng(n, k, seed=0):
    return _cut(torch.randperm(n), [n // k + (j < n % k) for j in range(k)])


@mistake("check_kfold_indices", "first n % k folds get one item more", kind="overfit")
def kfold_remainder_to_last(n, k, seed=0):
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return _cut(perm, [n // k] * (k - 1) + [n - (k - 1) * (n // k)])


@mistake("check_kfold_indices", "first n % k folds get one item more", kind="overfit")
def kfold_drop_remainder(n, k, seed=0):
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return _cut(perm, [n // k] * k)


@mistake("check_kfold_indices", "rest of the permutation, in order")
def kfold_sorted_train(n, k, seed=0):
    return [(tr.sort().values, te) for tr, te in cross_validation.kfold_indices(n, k, seed)]


@mistake("check_kfold_indices", "a torch.Generator of your own")
def kfold_seeds_global_rng(n, k, seed=0):
    torch.manual_seed(seed)  # the same permutation as a seeded generator's, but the caller's RNG is reset
    return _cut(torch.randperm(n), [n // k + (j < n % k) for j in range(k)])


@mistake("check_kfold_indices", "return a list of k tuples")
def kfold_tuple_of_folds(n, k, seed=0):
    return tuple(cross_validation.kfold_indices(n, k, seed))


@mistake("check_kfold_indices", "return a list of k tuples")
def kfold_pairs_as_lists(n, k, seed=0):
    return [[tr, te] for tr, te in cross_validation.kfold_indices(n, k, seed)]


# flip_labels
@mistake("check_flip_labels", "a flipped label must change")
def flip_to_any_class(y, fraction, n_classes, generator=None):
    m = round(fraction * len(y))
    idx = torch.randperm(len(y), generator=generator)[:m]
    out = y.clone()
    out[idx] = torch.randint(0, n_classes, (m,), generator=generator).to(y.dtype)
    return out


@mistake("check_flip_labels", "draw in the stated order")
def flip_shifts_first(y, fraction, n_classes, generator=None):
    m = round(fraction * len(y))
    shift = torch.randint(1, n_classes, (m,), generator=generator)
    idx = torch.randperm(len(y), generator=generator)[:m]
    out = y.clone()
    out[idx] = (y[idx] + shift) % n_classes
    return out


@mistake("check_flip_labels", "without repeats")
def flip_with_repeats(y, fraction, n_classes, generator=None):
    m = round(fraction * len(y))
    idx = torch.randint(len(y), (m,), generator=generator)
    out = y.clone()
    out[idx] = (y[idx] + torch.randint(1, n_classes, (m,), generator=generator)) % n_classes
    return out


@mistake("check_flip_labels", "round(fraction * n)", kind="overfit")
def flip_truncates(y, fraction, n_classes, generator=None):
    m = int(fraction * len(y))
    idx = torch.randperm(len(y), generator=generator)[:m]
    out = y.clone()
    out[idx] = ((y[idx] + torch.randint(1, n_classes, (m,), generator=generator)) % n_classes).to(y.dtype)
    return out


@mistake("check_flip_labels", "leave the inputs as they are", kind="inplace")
def flip_in_place(y, fraction, n_classes, generator=None):
    m = round(fraction * len(y))
    idx = torch.randperm(len(y), generator=generator)[:m]
    y[idx] = (y[idx] + torch.randint(1, n_classes, (m,), generator=generator)) % n_classes
    return y


@mistake("check_flip_labels", "dtype", kind="dtype")
def flip_long(y, fraction, n_classes, generator=None):
    return noisy_labels.flip_labels(y, fraction, n_classes, generator).long()


# token_dropout
def _compact(ids, keep, pad_id):
    """Each row's kept tokens moved to the front, pad_id after them: what every token_dropout mutant returns."""
    out = torch.full_like(ids, pad_id)
    for b in range(ids.shape[0]):
        kept = ids[b][keep[b]]
        out[b, : len(kept)] = kept
    return out


@mistake("check_token_dropout", "close the gaps")
def dropout_holes(ids, p, generator=None, pad_id=0, protected=(101, 102)):
    r = torch.rand(ids.shape, generator=generator)
    keep = (r >= p) | (ids == pad_id) | torch.isin(ids, torch.tensor(list(protected), dtype=ids.dtype))
    return torch.where(keep, ids, torch.full_like(ids, pad_id))


@mistake("check_token_dropout", "never drop the padding id nor the protected ids")
def dropout_specials_too(ids, p, generator=None, pad_id=0, protected=(101, 102)):
    return augmentation.token_dropout(ids, p, generator, pad_id, ())


@mistake("check_token_dropout", "drop a token where torch.rand")
def dropout_inverted(ids, p, generator=None, pad_id=0, protected=(101, 102)):
    r = torch.rand(ids.shape, generator=generator)
    keep = (r < p) | (ids == pad_id) | torch.isin(ids, torch.tensor(list(protected), dtype=ids.dtype))
    return _compact(ids, keep, pad_id)


@mistake("check_token_dropout", "use pad_id and protected, the arguments", kind="overfit")
def dropout_minilm_ids(ids, p, generator=None, pad_id=0, protected=(101, 102)):
    return augmentation.token_dropout(ids, p, generator)


@mistake("check_token_dropout", "use pad_id and protected, the arguments", kind="overfit")
def dropout_hardcoded_ids(ids, p, generator=None, pad_id=0, protected=(101, 102)):
    r = torch.rand(ids.shape, generator=generator)
    keep = (r >= p) | (ids == 0) | (ids == 101) | (ids == 102)  # MiniLM's ids, whatever the arguments say
    return _compact(ids, keep, pad_id)


@mistake("check_token_dropout", "not by its position", kind="overfit")
def dropout_protects_ends(ids, p, generator=None, pad_id=0, protected=(101, 102)):
    r = torch.rand(ids.shape, generator=generator)
    keep = (r >= p) | (ids == pad_id)
    for b in range(ids.shape[0]):
        n_real = int((ids[b] != pad_id).sum())
        keep[b, 0] = keep[b, n_real - 1] = True  # [CLS] first, [SEP] last
    return _compact(ids, keep, pad_id)


@mistake("check_token_dropout", "leave the inputs as they are", kind="inplace")
def dropout_in_place(ids, p, generator=None, pad_id=0, protected=(101, 102)):
    ids[:] = augmentation.token_dropout(ids, p, generator, pad_id, protected)
    return ids


@mistake("check_token_dropout", "dtype", kind="dtype")
def dropout_long(ids, p, generator=None, pad_id=0, protected=(101, 102)):
    return augmentation.token_dropout(ids, p, generator, pad_id, protected).long()


# multitask_loss
@mistake("check_multitask_loss", "not the sum")
def mt_sum(logits_a, y_a, logits_b, y_b, weight):
    return F.cross_entropy(logits_a, y_a, reduction="sum") + weight * F.cross_entropy(logits_b, y_b, reduction="sum")


@mistake("check_multitask_loss", "do not average them")
def mt_mean(logits_a, y_a, logits_b, y_b, weight):
    return (F.cross_entropy(logits_a, y_a) + weight * F.cross_entropy(logits_b, y_b)) / 2


@mistake("check_multitask_loss", "applies log-softmax itself")
def mt_nll_on_logits(logits_a, y_a, logits_b, y_b, weight):
    return F.nll_loss(logits_a, y_a) + weight * F.nll_loss(logits_b, y_b)


@mistake("check_multitask_loss", "subtract each row's maximum before exp")
def mt_exp_then_log(logits_a, y_a, logits_b, y_b, weight):
    def ce(logits, y):
        p = logits.exp() / logits.exp().sum(-1, keepdim=True)
        return -p[torch.arange(len(y)), y].log().mean()
    return ce(logits_a, y_a) + weight * ce(logits_b, y_b)


@mistake("check_multitask_loss", "auxiliary task's loss only", kind="overfit")
def mt_no_weight(logits_a, y_a, logits_b, y_b, weight):
    return F.cross_entropy(logits_a, y_a) + F.cross_entropy(logits_b, y_b)


@mistake("check_multitask_loss", "auxiliary task's loss only", kind="overfit")
def mt_weight_on_main(logits_a, y_a, logits_b, y_b, weight):
    return weight * F.cross_entropy(logits_a, y_a) + F.cross_entropy(logits_b, y_b)


@mistake("check_multitask_loss", "leave the inputs as they are", kind="inplace")
def mt_in_place(logits_a, y_a, logits_b, y_b, weight):
    logits_a -= logits_a.amax(-1, keepdim=True)  # "for stability": changes the caller's logits
    return F.cross_entropy(logits_a, y_a) + weight * F.cross_entropy(logits_b, y_b)


@mistake("check_multitask_loss", "dtype", kind="dtype")
def mt_float64(logits_a, y_a, logits_b, y_b, weight):
    return F.cross_entropy(logits_a.double(), y_a) + weight * F.cross_entropy(logits_b.double(), y_b)


# lstm_cell
def _cell(x, h, c, W_ih, W_hh, b_ih, b_hh, order="ifgo", g_act=torch.tanh, b2=True, update=True, squash=True):
    gates = x @ W_ih.T + b_ih + h @ W_hh.T + (b_hh if b2 else 0)
    blocks = dict(zip(order, gates.chunk(4, -1)))
    i, f, g, o = torch.sigmoid(blocks["i"]), torch.sigmoid(blocks["f"]), g_act(blocks["g"]), torch.sigmoid(blocks["o"])
    c_new = f * c + i * g
    return o * (torch.tanh(c_new) if squash else c_new), (c_new if update else c)


@mistake("check_lstm_cell", "gate order is i, f, g, o")
def cell_ifog(x, h, c, W_ih, W_hh, b_ih, b_hh):
    return _cell(x, h, c, W_ih, W_hh, b_ih, b_hh, order="ifog")


@mistake("check_lstm_cell", "goes through tanh, not a sigmoid")
def cell_sigmoid_g(x, h, c, W_ih, W_hh, b_ih, b_hh):
    return _cell(x, h, c, W_ih, W_hh, b_ih, b_hh, g_act=torch.sigmoid)


@mistake("check_lstm_cell", "add both biases")
def cell_no_b_hh(x, h, c, W_ih, W_hh, b_ih, b_hh):
    return _cell(x, h, c, W_ih, W_hh, b_ih, b_hh, b2=False)


@mistake("check_lstm_cell", "return c', not the old c")
def cell_c_not_updated(x, h, c, W_ih, W_hh, b_ih, b_hh):
    return _cell(x, h, c, W_ih, W_hh, b_ih, b_hh, update=False)


@mistake("check_lstm_cell", "squash the new cell")
def cell_h_without_tanh(x, h, c, W_ih, W_hh, b_ih, b_hh):
    return _cell(x, h, c, W_ih, W_hh, b_ih, b_hh, squash=False)


@mistake("check_lstm_cell", "four blocks of H", kind="overfit")
def cell_split_by_input_width(x, h, c, W_ih, W_hh, b_ih, b_hh):
    gates = x @ W_ih.T + b_ih + h @ W_hh.T + b_hh
    i, f, g, o = gates.split(x.shape[1], dim=-1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


@mistake("check_lstm_cell", "leave the inputs as they are", kind="inplace")
def cell_in_place(x, h, c, W_ih, W_hh, b_ih, b_hh):
    h_new, c_new = lstm.lstm_cell(x, h, c, W_ih, W_hh, b_ih, b_hh)
    c.copy_(c_new)
    return h_new, c


@mistake("check_lstm_cell", "dtype", kind="dtype")
def cell_float32(x, h, c, W_ih, W_hh, b_ih, b_hh):
    h_new, c_new = lstm.lstm_cell(x, h, c, W_ih, W_hh, b_ih, b_hh)
    return h_new.float(), c_new.float()


# lstm_forward
def _forward(x, h0, c0, W, reset_c=False, out_c=False, keep_first=False, zero_state=False):
    h, c = (torch.zeros_like(h0), torch.zeros_like(c0)) if zero_state else (h0, c0)
    outs, first = [], None
    for t in range(x.shape[1]):
        h, c_new = lstm.lstm_cell(x[:, t], h, c, *W)
        c = c0 if reset_c else c_new
        outs.append(c_new if out_c else h)
        first = first or (h, c)
    return torch.stack(outs, 1), (first if keep_first else (h, c))


@mistake("check_lstm_forward", "carry the cell from step to step")
def forward_resets_c(x, h0, c0, W_ih, W_hh, b_ih, b_hh):
    return _forward(x, h0, c0, (W_ih, W_hh, b_ih, b_hh), reset_c=True)


@mistake("check_lstm_forward", "out holds h at every step")
def forward_outputs_c(x, h0, c0, W_ih, W_hh, b_ih, b_hh):
    return _forward(x, h0, c0, (W_ih, W_hh, b_ih, b_hh), out_c=True)


@mistake("check_lstm_forward", "state after the last step")
def forward_first_state(x, h0, c0, W_ih, W_hh, b_ih, b_hh):
    return _forward(x, h0, c0, (W_ih, W_hh, b_ih, b_hh), keep_first=True)


@mistake("check_lstm_forward", "from h0 and c0, the arguments", kind="overfit")
def forward_ignores_initial_state(x, h0, c0, W_ih, W_hh, b_ih, b_hh):
    return _forward(x, h0, c0, (W_ih, W_hh, b_ih, b_hh), zero_state=True)


@mistake("check_lstm_forward", "leave the inputs as they are", kind="inplace")
def forward_in_place(x, h0, c0, W_ih, W_hh, b_ih, b_hh):
    out, (h, c) = lstm.lstm_forward(x, h0, c0, W_ih, W_hh, b_ih, b_hh)
    h0.copy_(h)
    c0.copy_(c)
    return out, (h0, c0)


@mistake("check_lstm_forward", "dtype", kind="dtype")
def forward_float32_buffer(x, h0, c0, W_ih, W_hh, b_ih, b_hh):
    B, T, _ = x.shape
    out = torch.zeros(B, T, h0.shape[1])  # float32, whatever x is
    h, c = h0, c0
    for t in range(T):
        h, c = lstm.lstm_cell(x[:, t], h, c, W_ih, W_hh, b_ih, b_hh)
        out[:, t] = h
    return out, (h, c)


# replay_batch
@mistake("check_replay_batch", "not old:new")
def replay_ratio_of_new(new, old, batch_size, ratio, generator=None):
    n_old = round(ratio / (1 + ratio) * batch_size)
    rows_new = torch.randint(len(new), (batch_size - n_old,), generator=generator)
    rows_old = torch.randint(len(old), (n_old,), generator=generator)
    return torch.cat([new[rows_new], old[rows_old]])


@mistake("check_replay_batch", "draw the new rows first")
def replay_old_drawn_first(new, old, batch_size, ratio, generator=None):
    n_old = round(ratio * batch_size)
    rows_old = torch.randint(len(old), (n_old,), generator=generator)
    rows_new = torch.randint(len(new), (batch_size - n_old,), generator=generator)
    return torch.cat([new[rows_new], old[rows_old]])


@mistake("check_replay_batch", "starts with the new rows")
def replay_old_rows_first(new, old, batch_size, ratio, generator=None):
    n_old = round(ratio * batch_size)
    rows_new = torch.randint(len(new), (batch_size - n_old,), generator=generator)
    rows_old = torch.randint(len(old), (n_old,), generator=generator)
    return torch.cat([old[rows_old], new[rows_new]])


@mistake("check_replay_batch", "with Python's round", kind="overfit")
def replay_truncates(new, old, batch_size, ratio, generator=None):
    n_old = int(ratio * batch_size)
    rows_new = torch.randint(len(new), (batch_size - n_old,), generator=generator)
    rows_old = torch.randint(len(old), (n_old,), generator=generator)
    return torch.cat([new[rows_new], old[rows_old]])


@mistake("check_replay_batch", "not up", kind="overfit")
def replay_ceil(new, old, batch_size, ratio, generator=None):
    n_old = math.ceil(ratio * batch_size)
    rows_new = torch.randint(len(new), (batch_size - n_old,), generator=generator)
    rows_old = torch.randint(len(old), (n_old,), generator=generator)
    return torch.cat([new[rows_new], old[rows_old]])


@mistake("check_replay_batch", "sends a half to the even neighbour", kind="overfit")
def replay_round_half_up(new, old, batch_size, ratio, generator=None):
    n_old = int(ratio * batch_size + 0.5)
    rows_new = torch.randint(len(new), (batch_size - n_old,), generator=generator)
    rows_old = torch.randint(len(old), (n_old,), generator=generator)
    return torch.cat([new[rows_new], old[rows_old]])


@mistake("check_replay_batch", "leave the inputs as they are", kind="inplace")
def replay_shuffles_new_in_place(new, old, batch_size, ratio, generator=None):
    out = continual.replay_batch(new, old, batch_size, ratio, generator)
    new[:] = new.flip(0)  # "shuffle" the pool for next time
    return out


@mistake("check_replay_batch", "dtype", kind="dtype")
def replay_long(new, old, batch_size, ratio, generator=None):
    return continual.replay_batch(new, old, batch_size, ratio, generator).long()


# fit_power_law
@mistake("check_fit_power_law", "misses the floor")
def fit_without_floor(N, L, grid=200):
    return scaling.fit_power_law(N, L, grid=1)


@mistake("check_fit_power_law", "not in log(L - c)")
def fit_picks_c_in_log_space(N, L, grid=200):
    x, Lt = torch.tensor(N, dtype=torch.float64).log(), torch.tensor(L, dtype=torch.float64)
    best = None
    for k in range(grid):
        c = k / grid * min(L)
        z = (Lt - c).log()
        b1 = float(((x - x.mean()) * (z - z.mean())).sum() / ((x - x.mean()) ** 2).sum())
        b0 = float(z.mean()) - b1 * float(x.mean())
        sse = float(((b0 + b1 * x - z) ** 2).sum())
        if best is None or sse < best[0]:
            best = (sse, math.exp(b0), -b1, c)
    return best[1:]


@mistake("check_fit_power_law", "return alpha = -slope")
def fit_slope_as_alpha(N, L, grid=200):
    a, alpha, c = scaling.fit_power_law(N, L, grid)
    return a, -alpha, c


@mistake("check_fit_power_law", "use grid, the argument", kind="overfit")
def fit_fixed_grid(N, L, grid=200):
    return scaling.fit_power_law(N, L, 200)


@mistake("check_fit_power_law", "the grid starts at k = 0", kind="overfit")
def fit_grid_from_one(N, L, grid=200):
    return grade.fit_by_error(N, L, grid, "sse", first_k=1)


@mistake("check_fit_power_law", "the plain squared error in L", kind="overfit")
def fit_relative_error(N, L, grid=200):
    return grade.fit_by_error(N, L, grid, "rel")


@mistake("check_fit_power_law", "the plain squared error in L", kind="overfit")
def fit_absolute_error(N, L, grid=200):
    return grade.fit_by_error(N, L, grid, "l1")


@mistake("check_fit_power_law", "the plain squared error in L", kind="overfit")
def fit_error_of_log_L(N, L, grid=200):
    return grade.fit_by_error(N, L, grid, "log_L")
