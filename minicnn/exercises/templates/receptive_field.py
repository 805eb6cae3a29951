"""Exercise receptive_field: how many input pixels one output of a stack sees.

A stack of layers, each a square window of size k moved by stride s. Walk the
stack from the input: keep `jump`, the distance in input pixels between two
neighbouring positions of the current layer (the product of the strides BEFORE
it), and the field size r:

    r = 1, jump = 1 at the input
    for each layer (k, s):   r += (k - 1) * jump;   jump *= s

Two 3x3 layers see 5x5; two 5x5 layers see 9x9; a 3x3 stride-2 layer then a
3x3 layer see 7x7.

Check your file with:  minicnn exercise check receptive_field
"""


def receptive_field(layers):
    """Field size (an int) of one output of the stack `layers`, a list of
    (kernel, stride) pairs from the input upwards.

    >>> receptive_field([(3, 1), (3, 1)])
    5
    >>> receptive_field([(3, 2), (3, 1)])
    7
    """
    # BEGIN SOLUTION
    r, jump = 1, 1
    for k, s in layers:
        r += (k - 1) * jump
        jump *= s
    return r
    # END SOLUTION
