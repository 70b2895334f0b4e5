"""Training samplers: weighted epoch order, whole-batch epochs of a run, resume mid-epoch, epoch-tagged draws."""

import torch

from singleshot.data.samplers import EpochDraws, EpochSampler, RunSampler


def test_epoch_sampler_weights_and_epochs():
    sampler = EpochSampler([4, 10], [2.0, 0.5], seed=1)
    order = sampler.order()
    assert len(order) == 8 + 5
    assert sorted(order[order < 4].tolist()) == [0, 0, 1, 1, 2, 2, 3, 3]
    assert len(set(order[order >= 4].tolist())) == 5
    assert list(sampler) == order.tolist() and len(sampler) == 13
    sampler.set_epoch(1)
    assert not (sampler.order() == order).all()


def test_run_sampler_cuts_each_epoch_to_whole_batches_and_resumes_mid_epoch():
    epochs = EpochSampler([5, 3], [1.0, 1.0], seed=3)
    draws = list(RunSampler(epochs, batch_size=3, start_epoch=0, end_epoch=3))
    assert len(draws) == len(RunSampler(epochs, 3, 0, 3)) == 18  # 8 per epoch, cut to 6
    for epoch in range(3):
        epochs.set_epoch(epoch)
        assert [i for e, i in draws if e == epoch] == epochs.order()[:6].tolist()
    resumed = list(RunSampler(epochs, batch_size=3, start_epoch=1, end_epoch=3, skip=3))
    assert resumed == draws[9:]


def test_epoch_draws_set_the_epoch_before_reading():
    class Recorder(torch.utils.data.Dataset):
        def __init__(self, n):
            self.n, self.epoch = n, -1

        def set_epoch(self, epoch):
            self.epoch = epoch

        def __len__(self):
            return self.n

        def __getitem__(self, i):
            return (self.epoch, i)

    draws = EpochDraws([Recorder(2), Recorder(3)])
    assert len(draws) == 5
    assert draws[(4, 1)] == (4, 1) and draws[(7, 3)] == (7, 1)  # the second set's first item, at epoch 7
