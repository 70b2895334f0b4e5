"""Data: dataset formats, datasets and loaders, training samplers, augmentation."""
