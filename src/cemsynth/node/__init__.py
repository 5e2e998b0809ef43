"""The hospital side: a DICOM node and a folder watcher that synthesize on arrival.

Bottom up: :mod:`~cemsynth.node.queue` (the durable on-disk queue), :mod:`~cemsynth.node.intake`
(what is queued, ignored or quarantined), :mod:`~cemsynth.node.delivery` (C-STORE or folder,
with back-off), :mod:`~cemsynth.node.service` (the synthesis and delivery workers),
:mod:`~cemsynth.node.status` (``status.json``, ``node-status``), the two ways in
(:mod:`~cemsynth.node.dicom_server`, :mod:`~cemsynth.node.watch`) and
:mod:`~cemsynth.node.run`, which puts them together. See docs/node.md.
"""
