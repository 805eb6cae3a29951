"""Exercise receptive_window: which input pixels one output position sees.

A stack of layers (kernel k, stride s), no padding, along one axis. Walking
up the stack, the field grows by (k - 1) * jump, where jump (the product of
the strides below) is how far apart neighbouring positions are, in input
pixels. Output position i of the last layer therefore sees the input pixels

    first = i * jump_total          last = first + r - 1

with jump_total the product of ALL the strides and r the receptive field
(the strided rule: r = 1 + sum_l (k_l - 1) * prod_{m < l} s_m).

Check your file with:  minicnn exercise check receptive_window
"""


def receptive_window(layers, i):
    """(first, last): input pixels (inclusive) seen by output position i.

    layers is a list of (kernel, stride) pairs, the first layer first.

    >>> receptive_window([(3, 1), (3, 1)], 0)
    (0, 4)
    >>> receptive_window([(2, 2), (3, 1)], 1)
    (2, 7)
    """
    # BEGIN SOLUTION
    r, jump = 1, 1
    for k, s in layers:
        r += (k - 1) * jump
        jump *= s
    first = i * jump
    return first, first + r - 1
    # END SOLUTION
