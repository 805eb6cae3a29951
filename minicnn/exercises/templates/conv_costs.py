"""Exercise conv_costs: what 1x1, depthwise and separable convolutions save.

For one example, a convolution with C input and T output channels, kernel
K x K, producing OH x OW outputs, counted as MobileNet does (weights without
biases; MACs = multiply-accumulates of those weights):

    standard  K x K, C -> T          weights T*C*K*K   MACs OH*OW*T*C*K*K
    pointwise 1 x 1, C -> T          weights T*C       MACs OH*OW*T*C
    depthwise K x K, C -> C (groups=C)  weights C*K*K  MACs OH*OW*C*K*K
    separable depthwise K x K then pointwise 1 x 1: the sum of the two

Check your file with:  minicnn exercise check conv_costs
"""


def conv_cost(kind, c, t, k, oh, ow):
    """(weights, macs) of one layer; kind is "standard", "pointwise",
    "depthwise" (t == c) or "separable".

    >>> conv_cost("standard", 3, 8, 3, 4, 4)
    (216, 3456)
    >>> conv_cost("pointwise", 3, 8, 3, 4, 4)
    (24, 384)
    """
    # BEGIN SOLUTION
    if kind == "standard":
        weights = t * c * k * k
    elif kind == "pointwise":
        weights = t * c
    elif kind == "depthwise":
        weights = c * k * k
    else:
        weights = c * k * k + t * c
    return weights, weights * oh * ow
    # END SOLUTION
