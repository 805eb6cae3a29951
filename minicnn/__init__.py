"""minicnn: a pure-NumPy engine where every equation of a convolutional-networks course is
short, visible, tested code.

    from minicnn.core import Parameter, Layer, Sequential
    from minicnn import layers, functional, losses, optim
"""

__version__ = "0.1.0"
