"""Cross-rank NSP negatives on CPU: two gloo processes, each with its shard of a global batch.

The gathered loss, averaged over ranks by their query counts, equals the single-process
in-batch loss over the global batch (duplicates across ranks counted once). Its gradient is
the stop-gradient version: on each rank, only the local queries' terms reach the local passage
embeddings (other ranks' passages arrive detached).
"""

import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from repro.methods.cosup import gather_negatives, nsp_loss, passage_key

D = 4
_gen = torch.Generator().manual_seed(0)  # the same tables in the spawned processes
PASSAGES = torch.randn(4, D, generator=_gen)  # global passage table; P2 is used on both ranks
QUERIES = torch.randn(6, D, generator=_gen)
LINKS = ["P0", "P1", "P2", "P2", "P2", "P3"]  # query i's positive passage
SHARDS = [[0, 1, 2], [3, 4, 5]]  # query rows per rank: 3 and 2 distinct passages


def local_batch(rank):
    """A rank's queries, its distinct passages (in first-use order) and positives."""
    rows = SHARDS[rank]
    pids = list(dict.fromkeys(LINKS[i] for i in rows))
    p = PASSAGES[[int(pid[1:]) for pid in pids]]
    pos = torch.tensor([pids.index(LINKS[i]) for i in rows])
    keys = torch.tensor([passage_key(pid) for pid in pids])
    return QUERIES[rows].clone(), p.clone(), pos, keys


def worker(rank, world, port, out_dir):
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        q, p, pos, keys = local_batch(rank)
        q.requires_grad_(True)
        p.requires_grad_(True)
        allp = gather_negatives(p, keys)
        loss = nsp_loss(q, allp, pos)
        (loss * len(q) / len(LINKS)).backward()  # this rank's share of the global mean
        total = torch.tensor([loss.item() * len(q)])
        dist.all_reduce(total)
        torch.save({"loss": loss.item(), "global": total.item() / len(LINKS),
                    "n_columns": allp.shape[0], "q_grad": q.grad, "p_grad": p.grad},
                   os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cross_rank_negatives_equal_the_global_in_batch_loss(tmp_path):
    mp.spawn(worker, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)
    res = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    # single process, global batch: the 4 distinct passages, every query against all of them
    q = QUERIES.clone().requires_grad_(True)
    p = PASSAGES.clone().requires_grad_(True)
    pos = torch.tensor([int(pid[1:]) for pid in LINKS])
    single = nsp_loss(q, p, pos)
    assert all(r["n_columns"] == 4 for r in res)  # P2 gathered once, not twice
    assert res[0]["global"] == res[1]["global"]
    torch.testing.assert_close(torch.tensor(res[0]["global"]), single.detach())
    assert abs(res[0]["loss"] - res[1]["loss"]) > 1e-6  # the shards really differ
    single.backward()
    for rank in range(2):  # query gradients are exact
        torch.testing.assert_close(res[rank]["q_grad"], q.grad[SHARDS[rank]])
    # passage gradients: only this rank's queries reach its passages (stop-gradient negatives)
    for rank in range(2):
        rows = SHARDS[rank]
        qq = QUERIES.clone()
        pp = PASSAGES.clone().requires_grad_(True)
        logits = qq[rows] @ pp.T
        part = torch.nn.functional.cross_entropy(logits, pos[rows], reduction="sum")
        (part / len(LINKS)).backward()
        _, _, _, keys = local_batch(rank)
        pids = list(dict.fromkeys(LINKS[i] for i in rows))
        torch.testing.assert_close(res[rank]["p_grad"], pp.grad[[int(x[1:]) for x in pids]])
        assert len(keys) == len(pids)
