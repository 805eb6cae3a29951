"""Exercise output_size: the output-size formula (stride, padding, dilation).

A window of `kernel` taps with `dilation` d spans d*(kernel - 1) + 1 input
positions. With `padding` zeros added on BOTH sides, the window fits at
positions 0, stride, 2*stride, ... as long as it stays inside:

    OUT = (size + 2*padding - dilation*(kernel - 1) - 1) // stride + 1

(floor division: a last window that would stick out is dropped).

Check your file with:  minicnn exercise check output_size
"""


def conv_output_size(size, kernel, stride=1, padding=0, dilation=1):
    """The number of window positions along one axis (an int).

    >>> conv_output_size(28, 5)
    24
    >>> conv_output_size(7, 3, stride=2, padding=1)
    4
    """
    # BEGIN SOLUTION
    extent = dilation * (kernel - 1) + 1
    return (size + 2 * padding - extent) // stride + 1
    # END SOLUTION
