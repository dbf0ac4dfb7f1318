"""Built-in demo inputs (no data files, no downloads).

``mage.demo.synthetic`` makes a SYNTHETIC person walking, turning and reaching, and the
head + wrist tracking a VR rig would report for it. Import it explicitly::

    from mage.demo.synthetic import synthetic_tracking
"""
