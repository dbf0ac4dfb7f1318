"""The colours of every picture the project draws (the video, the still, the viewer).

One scheme: the prediction is blue (left) / red (right), the reference or ground truth
cyan (left) / orange (right), body-centre bones grey in both; the tracked head and
wrists (the model's input) are ringed in green. :mod:`mage.viz.render` and the browser
viewer (``static/viewer.js``, which reads the palettes from the page's JSON) both take
them from here, and both draw a legend that says so.
"""

from __future__ import annotations

PREDICTION = {"left": "#1f77b4", "right": "#d62728", "center": "#404040"}
REFERENCE = {"left": "#17becf", "right": "#ff7f0e", "center": "#8c8c8c"}
# Further motions in the viewer (a third, a fourth file).
EXTRA = ({"left": "#9467bd", "right": "#8c564b", "center": "#555555"},
         {"left": "#bcbd22", "right": "#e377c2", "center": "#999999"})
TRACKER = "#19b34a"
TRACKER_LABEL = "tracked head / wrists (the model's input)"


def palette(i: int) -> dict[str, str]:
    """Palette of the i-th motion drawn together: 0 the prediction, 1 the reference."""
    order = (PREDICTION, REFERENCE, *EXTRA)
    return dict(order[i % len(order)])
