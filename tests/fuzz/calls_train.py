"""Valid calls: training (``llmlab.train``) and parallelism (``llmlab.parallel``).

The workers of ``launch.run`` run here in a one-process gloo group (``fixtures.process_group``), as rank 0
of a world of 1.
"""
from __future__ import annotations

import torch

from tests.fuzz import fixtures as F
from tests.fuzz.call import method

CFG_KWARGS = dict(vocab_size=F.VOCAB, dim=16, n_layers=2, n_heads=4, n_kv_heads=2, hidden_dim=32, max_seq_len=32,
                  tie_embeddings=False)


def _param_with_grad():
    p = F.randn(4, 8).requires_grad_()
    p.grad = F.randn(4, 8, seed=1)
    return p


def _train_cfg(**kw):
    from llmlab.train import TrainConfig

    return TrainConfig(**{**dict(steps=2, batch_size=2, block_size=8, eval_every=1, eval_batches=1, warmup_steps=1),
                          **kw})


def _optimizer_call():
    model = F.decoder()
    return dict(model=model, optimizer=torch.optim.AdamW(model.parameters(), lr=1e-3), x=F.ids(2, 5),
                y=F.ids(2, 5, seed=1), max_norm=1.0, autocast_dtype=None, scaler=None)


def _dp_model_with_grads():
    from llmlab.parallel.data_parallel import make_data, make_model

    F.process_group()
    model = make_model()
    x, y = make_data(8)
    torch.nn.functional.mse_loss(model(x), y).backward()
    return model


def _stage():
    from llmlab.parallel.pipeline import Stage

    model = F.decoder(tie_embeddings=False)
    return Stage(model, range(0, 2), first=True, last=True)


def _with_group(**kwargs):
    F.process_group()
    return kwargs


def _sharded_forward():
    from llmlab.parallel.tensor_parallel import RowParallelLinear

    F.process_group()
    return method(RowParallelLinear(F.linear(8, 4), world_size=2, rank=1), "forward", x=F.randn(3, 4))


def _model(module: str):
    import importlib

    return importlib.import_module(module)


VALID = {
    # -------------------------------------------------------------------------------------- train
    "llmlab.train.get_batch": lambda: dict(data=F.ids(100), batch_size=2, block_size=8,
                                           generator=torch.Generator().manual_seed(0)),
    "llmlab.train.adamw_step": lambda: dict(param=F.randn(4), grad=F.randn(4, seed=1), exp_avg=torch.zeros(4),
                                            exp_avg_sq=torch.zeros(4), step=1, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                                            weight_decay=0.01),
    "llmlab.train.param_groups": lambda: dict(model=F.decoder(), weight_decay=0.1),
    "llmlab.train.lr_at": lambda: dict(step=5, max_lr=1e-3, warmup_steps=2, total_steps=10, min_lr=1e-4),
    "llmlab.train.clip_grad_norm": lambda: dict(parameters=[_param_with_grad()], max_norm=1.0),
    "llmlab.train.dropout": lambda: dict(x=F.randn(4, 8), p=0.1, training=True,
                                         generator=torch.Generator().manual_seed(0)),
    "llmlab.train.should_stop": lambda: dict(val_losses=[3.0, 2.5, 2.6, 2.7], patience=2, min_delta=0.01),
    "llmlab.train.lm_loss": lambda: dict(model=F.decoder(), x=F.ids(2, 5), y=F.ids(2, 5, seed=1)),
    "llmlab.train.train_step": _optimizer_call,
    "llmlab.train.estimate_loss": lambda: dict(model=F.decoder(), data=F.ids(100), batch_size=2, block_size=8,
                                               n_batches=2, seed=0, autocast_dtype=None),
    "llmlab.train.TrainConfig": lambda: dict(steps=2, batch_size=2, block_size=8, max_lr=1e-3, min_lr=1e-4,
                                             warmup_steps=1, weight_decay=0.1, betas=(0.9, 0.95), max_norm=1.0,
                                             eval_every=1, eval_batches=1, patience=2, min_delta=0.01,
                                             autocast_dtype=torch.bfloat16, seed=0),
    "llmlab.train.History": lambda: dict(train_loss=[1.0], lr=[1e-3], val_steps=[0], val_loss=[1.0], best_step=0,
                                         stopped_early=False, seconds=1.0),
    "llmlab.train.train": lambda: dict(model=F.decoder(), train_data=F.ids(200), val_data=F.ids(100, seed=1),
                                       cfg=_train_cfg(), progress=False, loss_fn=_model("llmlab.train").lm_loss,
                                       sample=None),
    # ------------------------------------------------------------------------- parallel.async_sgd
    "llmlab.parallel.async_sgd.parameter_server": lambda: dict(workers=2, updates=5, lr=0.05, batch_size=8, jitter=0.5,
                                                               seed=0),
    "llmlab.parallel.launch.worker_place": lambda: dict(rank=0, world_size=1),
    "llmlab.parallel.pipeline.worker_decoder_config": lambda: dict(cfg_kwargs=dict(vocab_size=64, dim=16, n_layers=2,
                                                                                 n_heads=4, n_kv_heads=2,
                                                                                 hidden_dim=32)),
    # ---------------------------------------------------------------------- parallel.data_parallel
    "llmlab.parallel.data_parallel.shard_range": lambda: dict(n=8, world_size=2, rank=1),
    "llmlab.parallel.data_parallel.average_gradients": lambda: dict(model=_dp_model_with_grads()),
    "llmlab.parallel.data_parallel.make_model": lambda: dict(seed=0),
    "llmlab.parallel.data_parallel.make_data": lambda: dict(n=16, seed=1),
    "llmlab.parallel.data_parallel.train": lambda: dict(
        model=_model("llmlab.parallel.data_parallel").make_model(),
        **dict(zip(("x", "y"), _model("llmlab.parallel.data_parallel").make_data(16))), steps=2, batch_size=8,
        lr=0.05, rank=0, world_size=1, ddp=False),
    "llmlab.parallel.data_parallel.worker_train": lambda: _with_group(rank=0, world_size=1, steps=2, batch_size=8,
                                                                      ddp=False),
    # ----------------------------------------------------------------------------- parallel.launch
    "llmlab.parallel.launch.free_port": lambda: {},
    "llmlab.parallel.launch.run": lambda: dict(fn=_model("llmlab.parallel.workers").rank_and_sum, world_size=1,
                                               backend="gloo", timeout=20.0, port=None),
    # --------------------------------------------------------------------------- parallel.pipeline
    "llmlab.parallel.pipeline.split_layers": lambda: dict(n_layers=5, stages=2),
    "llmlab.parallel.pipeline.gpipe_schedule": lambda: dict(stages=2, micro_batches=3),
    "llmlab.parallel.pipeline.bubble_fraction": lambda: dict(stages=2, micro_batches=3),
    "llmlab.parallel.pipeline.measured_bubble": lambda: dict(busy=[[(0.0, 1.0), (1.5, 2.0)], [(0.5, 1.5)]]),
    "llmlab.parallel.pipeline.Stage": lambda: dict(model=F.decoder(tie_embeddings=False), layers=range(0, 1),
                                                   first=True, last=False),
    "llmlab.parallel.pipeline.lm_loss": lambda: dict(logits=F.randn(2, 5, F.VOCAB), ids=F.ids(2, 5)),
    "llmlab.parallel.pipeline.gpipe_step": lambda: _with_group(stage=_stage(), ids=F.ids(4, 5), micro_batches=2,
                                                               rank=0, world_size=1),
    "llmlab.parallel.pipeline.worker_gpipe": lambda: _with_group(rank=0, world_size=1, cfg_kwargs=dict(CFG_KWARGS),
                                                                 ids=F.ids(4, 5), micro_batches=2, seed=0, threads=1),
    "llmlab.parallel.pipeline.worker_gpipe_sweep": lambda: _with_group(rank=0, world_size=1,
                                                                       cfg_kwargs=dict(CFG_KWARGS), ids=F.ids(4, 5),
                                                                       micro_batch_counts=[1, 2], seed=0, threads=1),
    # ---------------------------------------------------------------------------- parallel.speedup
    "llmlab.parallel.speedup.amdahl": lambda: dict(n=4, parallel_fraction=0.9),
    "llmlab.parallel.speedup.comm_model": lambda: dict(n=4, t1=1.0, nbytes=1e6, bandwidth=1e9, latency=1e-5),
    "llmlab.parallel.speedup.make_mlp": lambda: dict(width=8, seed=0),
    "llmlab.parallel.speedup.worker_step_times": lambda: _with_group(rank=0, world_size=1, width=8, batch_size=8,
                                                                     steps=2),
    "llmlab.parallel.speedup.measure": lambda: dict(world_sizes=[1], width=8, batch_size=8, steps=1, timeout=20.0,
                                                    progress=False),
    # --------------------------------------------------------------------- parallel.tensor_parallel
    "llmlab.parallel.tensor_parallel.column_split": lambda: dict(weight=F.randn(4, 8), bias=F.randn(4, seed=1),
                                                                 world_size=2, rank=1),
    "llmlab.parallel.tensor_parallel.row_split": lambda: dict(weight=F.randn(4, 8), world_size=2, rank=1),
    "llmlab.parallel.tensor_parallel.row_parallel_linear": lambda: _with_group(
        x_part=F.randn(2, 4), weight_part=F.randn(3, 4, seed=1), bias=F.randn(3, seed=2)),
    "llmlab.parallel.tensor_parallel.RowParallelLinear": lambda: dict(linear=F.linear(8, 4), world_size=2, rank=1),
    "llmlab.parallel.tensor_parallel.RowParallelLinear.forward": _sharded_forward,
    "llmlab.parallel.tensor_parallel.TensorParallel": lambda: dict(module=F.mlp()),
    "llmlab.parallel.tensor_parallel.shard_attention": lambda: dict(attn=F.attention(), world_size=2, rank=1),
    "llmlab.parallel.tensor_parallel.shard_mlp": lambda: dict(mlp=F.mlp(), world_size=2, rank=1),
    "llmlab.parallel.tensor_parallel.parallelize": lambda: dict(model=F.decoder(), world_size=2, rank=0),
    "llmlab.parallel.tensor_parallel.communicated_bytes": lambda: dict(model=F.decoder()),
    "llmlab.parallel.tensor_parallel.ring_all_reduce_bytes": lambda: dict(nbytes=1000, world_size=4),
    "llmlab.parallel.tensor_parallel.worker_decoder": lambda: _with_group(rank=0, world_size=1,
                                                                          cfg_kwargs=dict(CFG_KWARGS), ids=F.ids(2, 5),
                                                                          seed=0),
    # ----------------------------------------------------------------------------- parallel.workers
    "llmlab.parallel.workers.rank_and_sum": lambda: _with_group(rank=0, world_size=1),
    "llmlab.parallel.workers.fail_on_rank": lambda: dict(rank=0, world_size=1, bad=1),
    "llmlab.parallel.workers.rank_one_skips_the_collective": lambda: _with_group(rank=0, world_size=1),
}

SKIP = {
    "llmlab.parallel.data_parallel.main": "a torchrun entry point: joins the process group that torchrun's "
                                          "environment variables describe",
    "llmlab.parallel.tensor_parallel.worker_minilm": "needs the real model (all-MiniLM-L6-v2, loaded from its package)",
}

#: Callables whose valid call needs more than the usual time limit (they start processes).
TIME_LIMITS = {
    "llmlab.parallel.launch.run": 10.0,
    "llmlab.parallel.speedup.measure": 10.0,
}
