"""Stateless math on ndarrays: every equation of the course, once, as a pure function.

Each module keeps a forward function next to its backward rule: whole-batch NumPy, no worker pools,
no cache blocking, no scratch buffers. Layers (`minicnn.layers`) wrap these with state; tutorials print their
source. The same math, fast, is in `minicnn.kernels`, with the same signatures.
"""

from .checks import check_array, check_finite, check_size, conv_output_size, pair, positive_int, positive_pair
from .conv import col2im, conv2d, conv2d_backward, conv_as_matrix, conv_transpose2d, flip_kernel, im2col
from .dct import dct, idct, zigzag_mask, zigzag_order
from .dense import (
    gelu,
    gelu_backward,
    leaky_relu,
    leaky_relu_backward,
    linear,
    linear_backward,
    maxout,
    maxout_backward,
    relu,
    relu6,
    relu6_backward,
    relu_backward,
    sigmoid,
    sigmoid_backward,
    tanh,
    tanh_backward,
)
from .norm import batch_norm_backward, batch_norm_eval, batch_norm_train
from .pool import (
    avg_pool2d,
    avg_pool2d_backward,
    global_avg_pool2d,
    global_avg_pool2d_backward,
    jitter_invariance,
    max_pool2d,
    max_pool2d_backward,
    subsample2d,
    subsample2d_backward,
    sum_pool2d,
    sum_pool2d_backward,
)
from .pool_variants import (
    mixed_pool2d,
    mixed_pool2d_backward,
    soft_pool2d,
    soft_pool2d_backward,
    stochastic_pool2d,
    stochastic_pool2d_backward,
    stochastic_pool2d_eval,
    stochastic_pool2d_eval_backward,
)
from .slicing import depth_to_space, haar_downsample, haar_upsample, space_to_depth
from .upsample import interpolation_matrix, upsample2d, upsample2d_backward
