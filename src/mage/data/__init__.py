"""Motion data: importers, exporters and the processed training dataset.

Modules (import the one you need; this package imports nothing heavy itself):

- ``mage.data.io``: ``load_motion`` / ``save_motion``, dispatch by file extension.
- ``mage.data.amass``: AMASS npz files (the community protocol), split lists.
- ``mage.data.bvh``, ``mage.data.asfamc``: BVH and CMU ASF/AMC files.
- Retargeting any rig to SMPL-22: ``mage.data.source_motion`` (``SourceMotion``, what the
  importers read), ``mage.data.rig_map`` (joint maps: presets, files, ``rig="auto"``),
  ``mage.data.rig_auto`` (automatic maps from names, tree and geometry),
  ``mage.data.rest_alignment`` (the rest-pose corrections), ``mage.data.retarget``
  (``retarget``).
- ``mage.data.dataset``: the processed on-disk dataset (``ProcessedDataset``).
- ``mage.data.build``: raw files of any format -> processed dataset (``build_dataset``),
  with ``sequence_ids`` (ids, subjects), ``discover`` (which files), ``build_workers``
  (the import pool), ``build_cache`` (reruns) and ``build_report``.
- ``mage.data.recipes``: named builds (``cmu-mini``).
- ``mage.data.samples``: the short real clips shipped with the package (``sample:walk``).
"""
