"""The sandbox side: cluster-autoscaler's stand-in over kwok nodes (:mod:`.autoscaler`, :mod:`.addon`) and the
add-on that runs the real Karpenter (:mod:`.karpenter`)."""
