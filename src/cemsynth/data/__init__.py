"""Training data over the cache: patient-level splits and the random patch sampler.

``cemsynth.data.torch_dataset`` (imports torch) wraps the sampler as an ``IterableDataset``.
"""
