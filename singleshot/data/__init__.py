"""Data: dataset formats, datasets and loaders, augmentation."""
