import pytest
import torch
from torch.utils.data import TensorDataset, default_collate

from gankit.data import ArrayDataset, EpochSampler, load_dataset, make_loader
from gankit.errors import GankitError


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", "train")


# ------------------------------------------------------------------------------- sampler


def test_sampler_order_is_a_function_of_seed_and_epoch():
    a, b = EpochSampler(100, seed=7), EpochSampler(100, seed=7)
    a.set_epoch(3)
    b.set_epoch(3)
    assert list(a) == list(b) and list(a) == list(a)  # re-iterating repeats the epoch
    assert sorted(a) == list(range(100))
    b.set_epoch(4)
    assert list(a) != list(b)
    c = EpochSampler(100, seed=8)
    c.set_epoch(3)
    assert list(a) != list(c)
    # (seed, epoch + 1) must not replay (seed + 1, epoch), as seed + epoch seeding would.
    d, e = EpochSampler(100, seed=7), EpochSampler(100, seed=8)
    d.set_epoch(1)
    assert list(d) != list(e)


def test_sampler_without_shuffle_is_in_order():
    s = EpochSampler(7, shuffle=False)
    s.set_epoch(5)
    assert list(s) == list(range(7)) and len(s) == 7


@pytest.mark.parametrize(
    ("n", "world_size", "drop_last", "per_rank"),
    [(10, 1, False, 10), (10, 3, False, 4), (10, 3, True, 3), (12, 4, False, 3), (2, 4, False, 1),
     (1497, 8, True, 187)],
)
def test_ranks_get_disjoint_equal_shares(n, world_size, drop_last, per_rank):
    shares = []
    for rank in range(world_size):
        s = EpochSampler(n, seed=1, rank=rank, world_size=world_size, drop_last=drop_last)
        s.set_epoch(2)
        shares.append(list(s))
        assert len(shares[-1]) == len(s) == per_rank
    flat = [i for share in shares for i in share]
    total = per_rank * world_size
    if drop_last:
        assert len(set(flat)) == total  # disjoint, the remainder dropped
    else:
        assert set(flat) == set(range(n))  # covering; padding repeats only the overflow
        assert len(flat) - len(set(flat)) == total - n
    # All ranks share one epoch order: interleaving the shares rebuilds the global order.
    full = EpochSampler(n, seed=1)
    full.set_epoch(2)
    order = (list(full) * (total // n + 1))[:total]
    for rank, share in enumerate(shares):
        assert share == order[rank::world_size]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"rank": 2, "world_size": 2}, "rank 2 is outside 0..1"), ({"world_size": 0}, "world size 0"),
     ({"rank": -1}, "rank -1")],
)
def test_sampler_rejects_bad_ranks(kwargs, match):
    with pytest.raises(GankitError, match=match):
        EpochSampler(10, **kwargs)


# -------------------------------------------------------------------------------- loader


def test_loader_batches_match_per_item_collation(digits):
    loader = make_loader(digits, 64, seed=3)
    loader.set_epoch(1)
    batches = list(loader)
    assert len(batches) == len(loader) == 1497 // 64
    order = loader.epoch_sampler.indices().tolist()
    for k, (x, y) in enumerate(batches):
        assert x.shape == (64, 1, 8, 8) and x.dtype == torch.float32 and y.shape == (64,)
        ex, ey = default_collate([digits[i] for i in order[k * 64:(k + 1) * 64]])
        assert torch.equal(x, ex) and torch.equal(y, ey)


def test_loader_keeps_short_last_batch_without_drop_last():
    ds = ArrayDataset(x=torch.randn(10, 2), kind="points")
    sizes = [len(b) for b in make_loader(ds, 4, drop_last=False)]
    assert sizes == [4, 4, 2]
    assert [len(b) for b in make_loader(ds, 4)] == [4, 4]


class NoPerItem(ArrayDataset):
    def __getitem__(self, i):
        raise AssertionError("the loader fetched a single sample")


def test_loader_fetches_whole_batches_not_items(digits):
    ds = NoPerItem(x=digits.x, y=digits.y, name="spy")
    xs = [x for x, _ in make_loader(ds, 64)]
    assert sum(len(x) for x in xs) == 23 * 64


def test_loader_order_follows_epoch_and_seed(digits):
    first = lambda loader: next(iter(loader))[1]  # noqa: E731
    a, b = make_loader(digits, 32, seed=5), make_loader(digits, 32, seed=5)
    assert torch.equal(first(a), first(b))
    a.set_epoch(1)
    assert not torch.equal(first(a), first(b))
    assert not torch.equal(first(make_loader(digits, 32, seed=6)), first(b))


def test_loader_leaves_global_rng_untouched(digits):
    torch.manual_seed(1234)
    before = torch.get_rng_state()
    loader = make_loader(digits, 64, seed=9)
    for epoch in range(2):
        loader.set_epoch(epoch)
        n = sum(len(x) for x, _ in loader)
    assert n == 23 * 64
    assert torch.equal(torch.get_rng_state(), before)


def test_loader_ranks_split_the_data(digits):
    seen = []
    for rank in range(2):
        loader = make_loader(digits, 100, rank=rank, world_size=2, seed=4)
        seen.append(torch.cat([y for _, y in loader]))
    assert len(seen[0]) == len(seen[1]) == 700  # 748 per rank -> 7 full batches of 100


def test_loader_with_plain_dataset_falls_back_to_default_collate():
    ds = TensorDataset(torch.arange(12.0).reshape(6, 2), torch.arange(6))
    x, y = next(iter(make_loader(ds, 3, shuffle=False)))
    assert torch.equal(y, torch.arange(3)) and torch.equal(x, torch.arange(6.0).reshape(3, 2))


def test_loader_with_worker_process_matches_in_process():
    ds = ArrayDataset(x=torch.randn(40, 2), y=torch.arange(40), kind="points")
    inline = [y for _, y in make_loader(ds, 8, seed=2)]
    worker = [y for _, y in make_loader(ds, 8, seed=2, num_workers=1)]
    assert all(torch.equal(a, b) for a, b in zip(inline, worker, strict=True))


@pytest.mark.parametrize(
    ("batch_size", "kwargs", "match"),
    [
        (4096, {}, r"^batch size 4096 is larger than the 1497 training samples of 'digits'; "
                   r"use a batch size of 1497 or less$"),
        (1000, {"world_size": 2}, r"748 training samples per rank .*a batch size of 748 or less"),
        (0, {}, "batch size 0 must be a positive integer"),
        (2.5, {}, "batch size 2.5"),
    ],
)
def test_make_loader_errors(digits, batch_size, kwargs, match):
    with pytest.raises(GankitError, match=match):
        make_loader(digits, batch_size, **kwargs)


def test_big_batch_allowed_without_drop_last(digits):
    (x, _), = list(make_loader(digits, 4096, drop_last=False))
    assert len(x) == 1497
