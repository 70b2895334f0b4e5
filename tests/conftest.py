import torch

# Two cores here: keep torch from oversubscribing them (its default can ignore the CPU set).
torch.set_num_threads(2)
