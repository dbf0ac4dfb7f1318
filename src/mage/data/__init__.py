"""Motion data: importers, exporters and the processed training dataset.

Modules (import the one you need; this package imports nothing heavy itself):

- ``mage.data.io``: ``load_motion`` / ``save_motion``, dispatch by file extension.
- ``mage.data.amass``: AMASS npz files (the community protocol), split lists.
- ``mage.data.bvh``, ``mage.data.asfamc``, ``mage.data.retarget``: BVH and CMU ASF/AMC.
- ``mage.data.dataset``: the processed on-disk dataset (``ProcessedDataset``).
- ``mage.data.build``: raw files of any format -> processed dataset (``build_dataset``).
- ``mage.data.recipes``: named builds (``cmu-mini``).
"""
