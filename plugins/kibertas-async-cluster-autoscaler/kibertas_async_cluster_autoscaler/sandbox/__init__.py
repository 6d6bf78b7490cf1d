"""The sandbox side: an autoscaler over kwok nodes (with a Karpenter stand-in) and its add-on."""
