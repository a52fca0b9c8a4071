"""Checks for notebook 16_learning_regimes."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from llmlab.grading.core import Case, Check, Draw, exercise
from llmlab.grading.core import randn as _randn
from llmlab.nn import lstm
from llmlab.regimes import augmentation, continual, cross_validation, multitask, noisy_labels, scaling


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ----------------------------------------------------------------------------------------- k-fold

PERM_HINT = "shuffle once with torch.randperm(n, generator=torch.Generator().manual_seed(seed)), then cut the permutation"
SIZES_HINT = ("when k does not divide n, the first n % k folds get one item more (n // k + 1) and the others n // k: "
              "every item is tested once and sizes differ by at most one")
CONTAINER_HINT = "return a list of k tuples, as the docstring says: [(train_idx, test_idx), ...]"
GLOBAL_RNG_HINT = ("shuffle with a torch.Generator of your own, seeded with seed: torch.manual_seed(seed) reseeds the "
                   "global generator, and every later torch.rand, dropout or weight init of the caller changes")


def _as_folds(c: Check, out, n: int, k: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    c.expect(isinstance(out, (list, tuple)) and len(out) == k,
             f"kfold_indices returned {type(out).__name__} of length {len(out) if hasattr(out, '__len__') else '?'}, "
             f"expected a list of k = {k} pairs", "return one (train_idx, test_idx) pair per fold")
    c.expect(isinstance(out, list), f"kfold_indices returned a {type(out).__name__} of folds, expected a list",
             CONTAINER_HINT)
    for j, pair in enumerate(out):
        c.expect(isinstance(pair, (tuple, list)) and len(pair) == 2, f"fold {j} is not a pair (train_idx, test_idx)",
                 "return (train_idx, test_idx) for each fold")
        c.expect(isinstance(pair, tuple), f"fold {j} is a {type(pair).__name__}, expected a tuple (train_idx, test_idx)",
                 CONTAINER_HINT)
        for name, t in zip(("train_idx", "test_idx"), pair):
            c.expect(isinstance(t, torch.Tensor) and t.dtype == torch.long and t.ndim == 1,
                     f"fold {j}'s {name} is not a 1-D int64 tensor", "slice the permutation: it is an int64 tensor")
    return list(out)


def _kfold_cases(d: Draw) -> list[Case]:
    k = d.int(3, 6)
    return [Case("sizes that k does not divide", k * d.int(3, 9) + d.int(1, k - 1), k, d.int(0, 999), hint=SIZES_HINT),
            Case("leave-one-out (k = n)", (n := d.int(4, 9)), n, d.int(0, 999)),
            Case("two folds, an odd n", 2 * d.int(3, 20) + 1, 2, d.int(0, 999), hint=SIZES_HINT),
            Case("another seed", 6 * d.int(2, 6), 6, d.int(1000, 9999))]


@exercise("16.kfold_indices", reference=cross_validation.kfold_indices, cases=_kfold_cases)
def check_kfold_indices(c: Check) -> None:
    for n, k, seed in ((20, 5, 0), (12, 3, 7)):
        folds = _as_folds(c, c.call(n, k, seed), n, k)
        tests = torch.cat([t for _, t in folds])
        c.expect(len(tests) == n and torch.equal(tests.sort().values, torch.arange(n)),
                 f"with n = {n}, k = {k} the test folds do not hold every item exactly once",
                 "cut one permutation of range(n) into k consecutive slices: each item lands in one test fold")
        for j, (tr, te) in enumerate(folds):
            c.expect(len(tr) + len(te) == n and torch.equal(torch.cat([tr, te]).sort().values, torch.arange(n)),
                     f"fold {j}: train_idx and test_idx together are not every item once",
                     "train_idx is every item outside the test fold, and nothing of it")
        c.expect(not torch.equal(tests, torch.arange(n)), "the folds are consecutive runs of 0 … n-1: nothing was shuffled",
                 PERM_HINT + " (the topic set is sorted by language and label: unshuffled folds would test one topic)")
        again = _as_folds(c, c.call(n, k, seed), n, k)
        c.expect(all(torch.equal(a[1], b[1]) for a, b in zip(folds, again)),
                 "two calls with the same seed gave different folds", PERM_HINT)
        want = cross_validation.kfold_indices(n, k, seed)
        for j, ((tr, te), (wtr, wte)) in enumerate(zip(folds, want)):
            c.expect(torch.equal(te, wte), f"fold {j}'s test_idx differs from the stated convention", PERM_HINT +
                     "; fold j is the j-th slice, in permutation order")
            c.expect(torch.equal(tr, wtr), f"fold {j}'s train_idx is not the rest of the permutation, in order",
                     "train_idx = torch.cat([perm[:start], perm[end:]])")
    state = torch.get_rng_state()
    c.call(10, 3, 5)
    c.expect(torch.equal(torch.get_rng_state(), state), "kfold_indices changed the state of torch's global random "
             "generator", GLOBAL_RNG_HINT)


# ------------------------------------------------------------------------------------- noisy labels

FLIP_HINT = "a flipped label must change: add s = torch.randint(1, n_classes, (m,)) and take it modulo n_classes"
ORDER_HINT = ("draw in the stated order, with the generator: first torch.randperm(n, generator=generator)[:m] for "
              "the items, then torch.randint(1, n_classes, (m,), generator=generator) for the shifts")


def _flip_variant(y, fraction, K, gen, variant):
    m = round(fraction * len(y))
    if variant == "any_class":
        idx = torch.randperm(len(y), generator=gen)[:m]
        new = torch.randint(0, K, (m,), generator=gen)
    elif variant == "shifts_first":
        shift = torch.randint(1, K, (m,), generator=gen)
        idx = torch.randperm(len(y), generator=gen)[:m]
        new = (y[idx] + shift) % K
    out = y.clone()
    out[idx] = new.to(y.dtype)
    return out


def _flip_cases(d: Draw) -> list[Case]:
    K = d.int(3, 6)
    n = d.choice([10, 13, 17, 22])
    m = d.int(2, n - 3)  # fraction · n = m + 0.6: rounds up to m + 1
    return [Case("a fraction of n that is not a whole number", d.randint(0, K, (n,)), (m + 0.6) / n,
                 K, _gen(d.int(0, 999)), hint="flip exactly round(fraction * n) labels (Python's round)"),
            Case("two classes", d.randint(0, 2, (d.int(8, 30),)), 0.5, 2, _gen(d.int(0, 999))),
            Case("int32 labels", d.randint(0, K, (20,)).int(), 0.3, K, _gen(d.int(0, 999))),
            Case("no noise", d.randint(0, K, (12,)), 0.0, K, _gen(d.int(0, 999))),
            Case("every label flipped", d.randint(0, K, (15,)), 1.0, K, _gen(d.int(0, 999)))]


@exercise("16.flip_labels", reference=noisy_labels.flip_labels, cases=_flip_cases)
def check_flip_labels(c: Check) -> None:
    y = torch.arange(40) % 4
    for fraction, seed in ((0.25, 0), (0.5, 3)):
        out = c.call(y, fraction, 4, _gen(seed))
        c.expect_tensor(out, shape=y.shape, dtype=y.dtype, name="the noisy labels")
        c.expect(int(out.min()) >= 0 and int(out.max()) < 4, "a label is outside 0 … n_classes-1",
                 "take (y + s) % n_classes")
        changed = int((out != y).sum())
        c.diagnose(out, {FLIP_HINT: _flip_variant(y, fraction, 4, _gen(seed), "any_class"),
                         ORDER_HINT: _flip_variant(y, fraction, 4, _gen(seed), "shifts_first")},
                   f"{changed} labels changed for fraction {fraction}", rtol=0,
                   correct=noisy_labels.flip_labels(y, fraction, 4, _gen(seed)))
        want_m = round(fraction * len(y))
        c.expect(changed == want_m, f"{changed} labels changed, expected exactly round({fraction} · {len(y)}) = {want_m}",
                 FLIP_HINT + "; choose the items without repeats (torch.randperm)")
        c.expect(torch.equal(out, noisy_labels.flip_labels(y, fraction, 4, _gen(seed))),
                 "the right number of labels changed, but not the ones the stated convention picks", ORDER_HINT)


# ------------------------------------------------------------------------------------- augmentation

KEEP_HINT = "never drop the padding id nor the protected ids ([CLS], [SEP]): they stay whatever rand says"
BY_ID_HINT = ("keep a token by its id, not by its position: every pad_id and every protected id stays, wherever it "
              "stands in the row (a packed row has [SEP] and [CLS] in the middle)")
GAP_HINT = "close the gaps: the kept tokens of a row move left, in order, and pad_id fills the end of the row"
DROP_HINT = "drop a token where torch.rand(ids.shape, generator=generator) < p (keep it where rand >= p)"


def _dropout_variant(ids, p, gen, pad_id, protected, variant):
    r = torch.rand(ids.shape, generator=gen)
    special = (ids == pad_id) | torch.isin(ids, torch.tensor(list(protected), dtype=ids.dtype))
    if variant == "holes":
        return torch.where((r >= p) | special, ids, torch.full_like(ids, pad_id))
    keep = (r < p) | special if variant == "inverted" else (r >= p) | (ids == pad_id)
    out = torch.full_like(ids, pad_id)
    for b in range(ids.shape[0]):
        kept = ids[b][keep[b]]
        out[b, : len(kept)] = kept
    return out


def _minilm_batch() -> torch.Tensor:
    rows = [[101, 7592, 2088, 2003, 1037, 2204, 2154, 102, 0, 0, 0, 0],
            [101, 1996, 2190, 2136, 2180, 1996, 2208, 1999, 1996, 2345, 3371, 102],
            [101, 4633, 2003, 2524, 102, 0, 0, 0, 0, 0, 0, 0]]
    return torch.tensor(rows)


def _dropout_cases(d: Draw) -> list[Case]:
    def batch(B, T, cls, sep, pad, dtype=torch.long):
        ids = torch.full((B, T), pad, dtype=dtype)
        for b in range(B):
            L = d.int(3, T)
            ids[b, 0], ids[b, L - 1] = cls, sep
            ids[b, 1 : L - 1] = d.randint(1000, 3000, (L - 2,)).to(dtype)
        return ids

    def packed(B, T):  # [CLS] a … [SEP] b … [SEP] [CLS] c … [SEP], then padding: specials at inner positions
        ids = torch.zeros(B, T, dtype=torch.long)
        for b in range(B):
            row = [101]
            while len(row) < T - 4:
                row += d.randint(1000, 3000, (d.int(1, 3),)).tolist() + [d.choice([102, 102, 101])]
            row += [102]
            ids[b, : len(row)] = torch.tensor(row)
        return ids

    def ordinary(B, T):  # pad 3, [CLS] 1, [SEP] 2, and the ordinary tokens 0, 101, 102 among others
        ids = torch.full((B, T), 3)
        for b in range(B):
            L = d.int(T - 3, T)
            ids[b, 0], ids[b, L - 1] = 1, 2
            ids[b, 1 : L - 1] = torch.tensor([d.choice([0, 101, 102, 2, 1, 1500, 2700]) for _ in range(L - 2)])
        return ids

    return [Case("another tokenizer's special ids (pad_id 1, protected (0, 2))", batch(3, 10, 0, 2, 1), 0.4,
                 _gen(d.int(0, 999)), pad_id=1, protected=(0, 2),
                 hint="use pad_id and protected, the arguments, not MiniLM's ids"),
            Case("packed pairs: [CLS] and [SEP] inside the rows, p = 0.9", packed(4, 16), 0.9, _gen(d.int(0, 999)),
                 hint=BY_ID_HINT),
            Case("another tokenizer (pad_id 3, protected (1, 2)) whose ordinary tokens include 0, 101 and 102",
                 ordinary(4, 14), 0.85, _gen(d.int(0, 999)), pad_id=3, protected=(1, 2),
                 hint="use pad_id and protected, the arguments: here 0, 101 and 102 are ordinary tokens, dropped like "
                      "any other, and 1, 2 are kept wherever they stand"),
            Case("int32 ids", batch(2, 9, 101, 102, 0, torch.int32), 0.3, _gen(d.int(0, 999))),
            Case("p = 0", batch(2, 8, 101, 102, 0), 0.0, _gen(d.int(0, 999))),
            Case("a batch of 1, a high p", batch(1, 14, 101, 102, 0), 0.8, _gen(d.int(0, 999)))]


@exercise("16.token_dropout", reference=augmentation.token_dropout, cases=_dropout_cases)
def check_token_dropout(c: Check) -> None:
    ids = _minilm_batch()
    for p, seed in ((0.3, 0), (0.5, 1)):
        out = c.call(ids, p, _gen(seed))
        c.expect_tensor(out, shape=ids.shape, dtype=ids.dtype, name="the augmented ids")
        args = (ids, p, _gen(seed), 0, (101, 102))
        c.diagnose(out, {GAP_HINT: _dropout_variant(*args, "holes"), DROP_HINT: _dropout_variant(*args, "inverted"),
                         KEEP_HINT: _dropout_variant(*args, "specials_dropped")},
                   f"with p = {p} your rows match a known mistake", rtol=0,
                   correct=augmentation.token_dropout(ids, p, _gen(seed)))
        for b in range(len(ids)):
            for special in (101, 102):
                c.expect(int((out[b] == special).sum()) == int((ids[b] == special).sum()),
                         f"row {b} lost its token {special}", KEEP_HINT)
            real = out[b] != 0
            c.expect(bool(real[: int(real.sum())].all()), f"row {b} has padding between kept tokens", GAP_HINT)
        c.expect(torch.equal(out, augmentation.token_dropout(ids, p, _gen(seed))),
                 f"with p = {p} other tokens were dropped than the stated convention drops", DROP_HINT)


# -------------------------------------------------------------------------------------- multi-task

WEIGHT_HINT = "the weight multiplies the auxiliary task's loss only: CE(a) + weight · CE(b)"


def _mt_cases(d: Draw) -> list[Case]:
    def task(N, K, dtype=torch.float32):
        return d.randn(N, K, dtype=dtype, scale=2.0), d.randint(0, K, (N,))

    N = d.int(3, 12)
    big_a, big_b = task(N, 5), task(N, 3)
    return [Case("a weight other than 1", *task(N, 4), *task(N, 2), d.choice([0.3, 0.5, 2.5]), hint=WEIGHT_HINT),
            Case("weight 0: the main task alone", *task(N, 3), *task(N, 5), 0.0, hint=WEIGHT_HINT),
            Case("float64 logits", *task(N, 4, torch.float64), *task(N, 2, torch.float64), 1.0),
            Case("a batch of 1", *task(1, 4), *task(1, 2), 0.7, hint=WEIGHT_HINT),
            Case("float32 logits above 100", big_a[0] + 150.0, big_a[1], big_b[0] + 120.0, big_b[1], 0.5,
                 hint="exp(150) overflows float32 (inf, then inf / inf = nan): subtract each row's maximum before exp "
                      "(log-sum-exp), or let F.cross_entropy or F.log_softmax do it")]


@exercise("16.multitask_loss", reference=multitask.multitask_loss, cases=_mt_cases)
def check_multitask_loss(c: Check) -> None:
    la, lb = _randn(6, 4, seed=0) * 2, _randn(6, 2, seed=1) * 2
    ya, yb = torch.tensor([0, 1, 2, 3, 1, 0]), torch.tensor([0, 1, 1, 0, 1, 0])
    out = c.call(la, ya, lb, yb, 1.0)
    c.expect_tensor(out, shape=(), dtype=la.dtype, name="the loss")
    ce_a, ce_b = F.cross_entropy(la, ya), F.cross_entropy(lb, yb)
    c.diagnose(out, {"each cross-entropy is the mean over the batch (F.cross_entropy's default), not the sum":
                     F.cross_entropy(la, ya, reduction="sum") + F.cross_entropy(lb, yb, reduction="sum"),
                     "add the two losses, do not average them: CE(a) + weight · CE(b)": (ce_a + ce_b) / 2,
                     "cross-entropy takes the logits: F.cross_entropy applies log-softmax itself":
                     F.nll_loss(la, ya) + F.nll_loss(lb, yb)},
               "the loss matches a known mistake", correct=ce_a + ce_b)
    c.close(out, ce_a + ce_b, "the loss with weight 1 differs from CE(a) + CE(b)",
            "F.cross_entropy(logits_a, y_a) + weight * F.cross_entropy(logits_b, y_b)")


# ------------------------------------------------------------------------------------------- LSTM

LSTM_MISTAKES = {
    "ifog": "PyTorch's gate order is i, f, g, o: the candidate g is the third block, the output gate o the fourth",
    "sigmoid_g": "the candidate g goes through tanh, not a sigmoid (it must be able to add negative values to c)",
    "no_b_hh": "add both biases, b_ih and b_hh (torch.nn.LSTM keeps two, cuDNN's layout)",
    "c_kept": "update the cell: c' = f ⊙ c + i ⊙ g, and return c', not the old c",
    "h_no_tanh": "h' = o ⊙ tanh(c'): squash the new cell before the output gate",
    "f_on_g": "the forget gate scales the old cell and the input gate the candidate: c' = f ⊙ c + i ⊙ g",
}


def _cell_variant(x, h, c, W_ih, W_hh, b_ih, b_hh, variant):
    gates = x @ W_ih.T + b_ih + h @ W_hh.T + (0 if variant == "no_b_hh" else b_hh)
    i, f, g, o = gates.chunk(4, -1)
    if variant == "ifog":
        i, f, o, g = gates.chunk(4, -1)
    g = torch.sigmoid(g) if variant == "sigmoid_g" else torch.tanh(g)
    i, f, o = torch.sigmoid(i), torch.sigmoid(f), torch.sigmoid(o)
    c_new = i * c + f * g if variant == "f_on_g" else f * c + i * g
    h_new = o * c_new if variant == "h_no_tanh" else o * torch.tanh(c_new)
    return h_new, (c if variant == "c_kept" else c_new)


def _lstm_weights(I: int, H: int, seed: int, dtype=torch.float64) -> tuple[torch.nn.LSTM, list[torch.Tensor]]:
    with torch.random.fork_rng(devices=[]):  # leave the learner's global seed alone
        torch.manual_seed(seed)
        m = torch.nn.LSTM(I, H, batch_first=True).to(dtype)
    return m, [p.detach().clone() for p in (m.weight_ih_l0, m.weight_hh_l0, m.bias_ih_l0, m.bias_hh_l0)]


def _as_pair(c: Check, out, what: str):
    c.expect(isinstance(out, tuple) and len(out) == 2, f"{what} returned {type(out).__name__}, expected a pair",
             "return a tuple of two values, as the docstring says")
    return out


def _cell_cases(d: Draw) -> list[Case]:
    def case(B, I, H, dtype=torch.float64, scale=1.0):
        _, W = _lstm_weights(I, H, d.int(0, 9999), dtype)
        return (d.randn(B, I, dtype=dtype, scale=scale), d.randn(B, H, dtype=dtype), d.randn(B, H, dtype=dtype), *W)

    return [Case("an input width I other than H", *case(3, d.int(2, 5), d.int(6, 9)),
                 hint="the gates have 4·H columns with H = h.shape[1]: cut them into four blocks of H (chunk(4, -1))"),
            Case("float32 tensors", *case(2, 4, 5, torch.float32)),
            Case("a batch of 1", *case(1, 3, 4)),
            Case("large inputs (saturated gates)", *case(4, 3, 3, scale=30.0))]


@exercise("16.lstm_cell", reference=lstm.lstm_cell, cases=_cell_cases)
def check_lstm_cell(c: Check) -> None:
    B, I, H = 3, 4, 4
    m, W = _lstm_weights(I, H, 0)
    x, h, cc = (_randn(B, n, seed=s, dtype=torch.float64) for s, n in ((1, I), (2, H), (3, H)))
    out = _as_pair(c, c.call(x, h, cc, *W), "lstm_cell")
    for name, t in zip(("h'", "c'"), out):
        c.expect_tensor(t, shape=(B, H), dtype=torch.float64, name=name)
    with torch.no_grad():
        _, (h_want, c_want) = m(x[:, None], (h[None], cc[None]))
    h_want, c_want = h_want[0], c_want[0]
    for name, hint in LSTM_MISTAKES.items():
        h_v, c_v = _cell_variant(x, h, cc, *W, name)
        c.diagnose(torch.cat(out, -1), {hint: torch.cat([h_v, c_v], -1)}, "your (h', c') match a known mistake",
                   rtol=1e-9, correct=torch.cat([h_want, c_want], -1))
    c.close(out[1], c_want, "c' differs from torch.nn.LSTM's", "c' = σ(f) ⊙ c + σ(i) ⊙ tanh(g)")
    c.close(out[0], h_want, "h' differs from torch.nn.LSTM's", "h' = σ(o) ⊙ tanh(c')")


def _forward_cases(d: Draw) -> list[Case]:
    def case(B, T, I, H, dtype=torch.float64, zero_state=False):
        _, W = _lstm_weights(I, H, d.int(0, 9999), dtype)
        h0 = torch.zeros(B, H, dtype=dtype) if zero_state else d.randn(B, H, dtype=dtype)
        c0 = torch.zeros(B, H, dtype=dtype) if zero_state else d.randn(B, H, dtype=dtype)
        return (d.randn(B, T, I, dtype=dtype), h0, c0, *W)

    return [Case("a state that does not start at zero", *case(2, d.int(3, 7), 3, 4),
                 hint="start the recurrence from h0 and c0, the arguments"),
            Case("float32 tensors", *case(3, 5, 4, 6, torch.float32, zero_state=True)),
            Case("one time step", *case(2, 1, 3, 3)),
            Case("a batch of 1, a longer sequence", *case(1, d.int(10, 20), 2, 5))]


def _forward_variants(x, h0, c0, W, variant):
    h, c, outs, first = h0, c0, [], None
    for t in range(x.shape[1]):
        h, c_new = lstm._cell(x[:, t], h, c, *W)
        c = c0 if variant == "c_reset" else c_new
        outs.append(c_new if variant == "out_c" else h)
        first = first or (h, c)
    out = torch.stack(outs, 1)
    return out, (first if variant == "first_state" else (h, c))


FORWARD_MISTAKES = {
    "c_reset": "carry the cell from step to step: each step reads the (h, c) the previous one returned",
    "out_c": "out holds h at every step (the output gate's result), not the cell c",
    "first_state": "return the state after the last step, (h_T, c_T)",
}


@exercise("16.lstm_forward", reference=lstm.lstm_forward, cases=_forward_cases)
def check_lstm_forward(c: Check) -> None:
    B, T, I, H = 2, 6, 3, 4
    m, W = _lstm_weights(I, H, 1)
    x = _randn(B, T, I, seed=4, dtype=torch.float64)
    h0 = c0 = torch.zeros(B, H, dtype=torch.float64)
    out = _as_pair(c, c.call(x, h0, c0, *W), "lstm_forward")
    seq, state = out
    c.expect_tensor(seq, shape=(B, T, H), dtype=torch.float64, name="out")
    state = _as_pair(c, state, "the final state")
    for name, t in zip(("h_T", "c_T"), state):
        c.expect_tensor(t, shape=(B, H), dtype=torch.float64, name=name)
    with torch.no_grad():
        want, (h_w, c_w) = m(x, (h0[None], c0[None]))
    for name, hint in FORWARD_MISTAKES.items():
        v_out, (v_h, v_c) = _forward_variants(x, h0, c0, W, name)
        c.diagnose(torch.cat([seq.flatten(), state[0].flatten(), state[1].flatten()]),
                   {hint: torch.cat([v_out.flatten(), v_h.flatten(), v_c.flatten()])},
                   "your result matches a known mistake", rtol=1e-9,
                   correct=torch.cat([want.flatten(), h_w.flatten(), c_w.flatten()]))
    c.close(seq, want, "out differs from torch.nn.LSTM(batch_first=True)'s",
            "loop over t, h, c = lstm_cell(x[:, t], h, c, ...), and stack the h's along dim 1")
    c.close(state[0], h_w[0], "h_T differs from torch.nn.LSTM's", "return the h of the last step")
    c.close(state[1], c_w[0], "c_T differs from torch.nn.LSTM's", "return the c of the last step")


# ------------------------------------------------------------------------------------------ replay

COUNT_HINT = "take round(ratio * batch_size) rows from old: ratio is old's share of the batch, not old:new"
REPLAY_ORDER_HINT = ("draw the new rows first, torch.randint(len(new), (batch_size - n_old,), generator=generator), then "
                     "the old ones, and put the new rows first in the batch")


def _replay_variant(new, old, B, ratio, gen, variant):
    n_old = round(ratio * B)
    if variant == "old_first":
        ro = torch.randint(len(old), (n_old,), generator=gen)
        rn = torch.randint(len(new), (B - n_old,), generator=gen)
        return torch.cat([new[rn], old[ro]])
    rn = torch.randint(len(new), (B - n_old,), generator=gen)
    ro = torch.randint(len(old), (n_old,), generator=gen)
    return torch.cat([old[ro], new[rn]])


def _replay_cases(d: Draw) -> list[Case]:
    W, B = d.int(3, 9), d.choice([10, 14, 18])
    k = d.int(1, B - 3)  # ratio · B = k + 0.6: rounds up to k + 1; k + 0.3 rounds down to k

    def rows(n, sign, dtype=torch.long):
        return (sign * d.randint(1, 1000, (n, W))).to(dtype)

    return [Case("round(ratio · batch_size) not a whole number", rows(d.int(5, 20), 1), rows(d.int(5, 20), -1),
                 B, (k + 0.6) / B, _gen(d.int(0, 999)),
                 hint="n_old = round(ratio * batch_size), with Python's round"),
            Case("ratio · batch_size with fractional part .3", rows(d.int(5, 20), 1), rows(d.int(5, 20), -1), B,
                 (k + 0.3) / B, _gen(d.int(0, 999)),
                 hint="n_old = round(ratio * batch_size), to the nearest whole number (Python's round), not up"),
            Case("ratio · batch_size exactly halfway, an even number and a half", rows(d.int(5, 20), 1),
                 rows(d.int(5, 20), -1), 16, (2 * d.int(1, 6) + 0.5) / 16, _gen(d.int(0, 999)),
                 hint="Python's round sends a half to the even neighbour, round(2.5) = 2 and round(3.5) = 4: use "
                      "round itself, not int(x + 0.5) or math.floor(x + 0.5)"),
            Case("int32 windows", rows(12, 1, torch.int32), rows(9, -1, torch.int32), 8, 0.5, _gen(d.int(0, 999))),
            Case("no replay", rows(7, 1), rows(5, -1), 6, 0.0, _gen(d.int(0, 999))),
            Case("only replay", rows(7, 1), rows(5, -1), 6, 1.0, _gen(d.int(0, 999)))]


@exercise("16.replay_batch", reference=continual.replay_batch, cases=_replay_cases)
def check_replay_batch(c: Check) -> None:
    new = torch.arange(1, 61).view(20, 3)  # positive rows
    old = -torch.arange(1, 31).view(10, 3)  # negative rows: a row shows where it came from
    for B, ratio, seed in ((8, 0.5, 0), (12, 0.25, 1)):
        out = c.call(new, old, B, ratio, _gen(seed))
        c.expect_tensor(out, shape=(B, 3), dtype=new.dtype, name="the batch")
        from_old = int((out[:, 0] < 0).sum())
        c.diagnose(out, {REPLAY_ORDER_HINT: _replay_variant(new, old, B, ratio, _gen(seed), "old_first"),
                         "the batch starts with the new rows, then the replayed old ones":
                         _replay_variant(new, old, B, ratio, _gen(seed), "old_rows_first")},
                   "your batch matches a known mistake", rtol=0, correct=continual.replay_batch(new, old, B, ratio, _gen(seed)))
        c.expect(from_old == round(ratio * B), f"{from_old} of {B} rows came from old with ratio {ratio}, "
                 f"expected {round(ratio * B)}", COUNT_HINT)
        c.expect(torch.equal(out, continual.replay_batch(new, old, B, ratio, _gen(seed))),
                 "the right number of old rows, but not the rows the stated convention draws", REPLAY_ORDER_HINT)


# ----------------------------------------------------------------------------------------- scaling

LOG_SSE_HINT = "choose c by the squared error of the curve in L itself, sum (a·N^-alpha + c - L)², not in log(L - c)"
C_ZERO_HINT = "search c over the grid k / grid · min(L): a straight line in log-log axes (c = 0) misses the floor"
SSE_HINT = ("choose c by the plain squared error in L, sum (a·N^-alpha + c - L)², the first smallest: not a relative "
            "error, an absolute one or an error of log L, which weigh the points differently")
SIGN_HINT = "the slope of log(L - c) against log N is -alpha: return alpha = -slope, a positive number"


def fit_by_error(N, L, grid: int, error: str = "sse", first_k: int = 0) -> tuple[float, float, float]:
    """The grid fit with c chosen by another error than the stated one (the check's and the catalogue's mistakes): ``error`` is "sse" (the convention),
    "rel" (relative squared error), "l1" (absolute error), "log_L" (squared error of log L) or "log_line" (the
    residual of the line in log(L - c)); ``first_k = 1`` leaves c = 0 off the grid."""
    x, Lt = torch.tensor(N, dtype=torch.float64).log(), torch.tensor(L, dtype=torch.float64)
    best = None
    for k in range(first_k, grid):
        cc = k / grid * min(L)
        z = (Lt - cc).log()
        b1 = float(((x - x.mean()) * (z - z.mean())).sum() / ((x - x.mean()) ** 2).sum())
        b0 = float(z.mean()) - b1 * float(x.mean())
        pred = math.exp(b0) * torch.exp(b1 * x) + cc
        err = {"sse": (pred - Lt) ** 2, "rel": ((pred - Lt) / Lt) ** 2, "l1": (pred - Lt).abs(),
               "log_L": (pred.log() - Lt.log()) ** 2, "log_line": (b0 + b1 * x - z) ** 2}[error]
        if best is None or float(err.sum()) < best[0]:
            best = (float(err.sum()), math.exp(b0), -b1, cc)
    return best[1:]


def _fit_variant(N, L, grid, variant):
    if variant == "c_zero":
        return scaling.fit_power_law(N, L, grid=1)
    if variant == "sign":
        a, alpha, c = scaling.fit_power_law(N, L, grid)
        return a, -alpha, c
    return fit_by_error(N, L, grid, "log_line")


def _ladder(a: float, alpha: float, c: float, n: int, noise: float, d: Draw | None = None, seed: int = 0):
    N = [float(1000 * 2.2**i) for i in range(n)]
    wiggle = [(d.float(-1, 1) if d else math.sin(7.3 * i + seed)) * noise for i in range(n)]
    return N, [a * x**-alpha + c + w for x, w in zip(N, wiggle)]


def _differs(u, v) -> bool:
    return any(not math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9) for a, b in zip(u, v))


def _noisy_ladder(d: Draw, grid: int):
    """A ladder with noise and one bumped point, on which choosing c by a relative, an absolute or a log error
    picks another c than the squared error in L (redrawn until it does: the case must tell them apart)."""
    for _ in range(50):
        N, L = _ladder(d.float(200, 400), d.float(0.4, 0.6), d.float(1.0, 2.0), 8, 0.1, d)
        L[d.int(2, 5)] += d.float(0.3, 0.6)
        want = scaling.fit_power_law(N, L, grid)
        if all(_differs(fit_by_error(N, L, grid, e), want) for e in ("rel", "l1", "log_L")):
            return N, L
    raise RuntimeError("no ladder told the errors apart")  # never seen: half of the draws do


def _fit_cases(d: Draw) -> list[Case]:
    return [Case("a floor of 0 (a pure power law)", *_ladder(d.float(5, 40), d.float(0.2, 0.6), 0.0, d.int(4, 9), 0.0, d),
                 hint="the grid starts at k = 0, c = 0: on a pure power law that c fits exactly"),
            Case("noisy points, losses from about 10 down to 2", *_noisy_ladder(d, 200), 200, hint=SSE_HINT),
            Case("another grid", *_ladder(d.float(10, 40), d.float(0.2, 0.5), d.float(1.0, 2.0), 7, 0.003, d),
                 d.choice([37, 90, 310]), hint="use grid, the argument: c_k = k / grid · min(L) for k = 0 … grid-1"),
            Case("three points", *_ladder(d.float(5, 20), d.float(0.2, 0.4), d.float(0.5, 1.5), 3, 0.0, d)),
            Case("another ladder", *_ladder(d.float(20, 80), d.float(0.3, 0.6), d.float(1.5, 3.0), 9, 0.01, d))]


@exercise("16.fit_power_law", reference=scaling.fit_power_law, cases=_fit_cases)
def check_fit_power_law(c: Check) -> None:
    N, L = _ladder(25.0, 0.35, 1.4, 8, 0.004)
    out = c.call(N, L)
    c.expect(isinstance(out, tuple) and len(out) == 3, f"fit_power_law returned {type(out).__name__}, expected (a, alpha, c)",
             "return a tuple of three floats")
    got = tuple(float(c.number(v, name)) for v, name in zip(out, ("a", "alpha", "c")))
    want = scaling.fit_power_law(N, L)
    for variant, hint in (("c_zero", C_ZERO_HINT), ("log_sse", LOG_SSE_HINT), ("sign", SIGN_HINT)):
        c.diagnose(torch.tensor(got), {hint: torch.tensor(_fit_variant(N, L, 200, variant))},
                   "your fit matches a known mistake", rtol=1e-6, correct=torch.tensor(want))
    c.expect(got[1] > 0, f"alpha = {got[1]:.3g}: the loss should fall with N", SIGN_HINT)
    for v, w, name in zip(got, want, ("a", "alpha", "c")):
        c.expect(math.isclose(v, w, rel_tol=1e-6, abs_tol=1e-9), f"{name} = {v:.6g}, expected {w:.6g}",
                 "for each c on the grid fit the line log(L - c) = log a - alpha·log N by least squares, and keep the "
                 "c with the smallest squared error of a·N^-alpha + c against L (the first one on a tie)")
