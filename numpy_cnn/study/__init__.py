"""Study tools: look inside a network (no training, no data loading here).

* :mod:`.summary` -- the layer table: shapes, parameters, multiply-adds, conv method
* :mod:`.trace` -- one image through the network: every activation and gradient
* :mod:`.viz` -- pictures of filters, feature maps, saliency and gradient flow
* :mod:`.plots` -- the figures a run writes (curves, confusion matrix, face sheet)

matplotlib is imported only when a picture is drawn.
"""
