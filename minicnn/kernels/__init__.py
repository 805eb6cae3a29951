"""The fast kernels: the same math as `minicnn.functional`, made fast for training.

Each kernel has the signature of its plain twin in `minicnn.functional`, names that twin in the first
line of its docstring, and is tested against it. Layers choose between the two at one visible dispatch
point (`if runtime.kernels_enabled(): ... else: ...`); `minicnn.runtime.plain()` (or `minicnn --plain`,
or MINICNN_PLAIN=1) runs the whole engine on the plain math.

Optimisation machinery lives here and only here: blocks of images sized to the cache, scratch buffers
reused within a call, wide rows, the channels-last row layout, worker threads (`minicnn.threads`).
Convolution: `conv` (the entry points), `conv_im2col`, `conv_rows`, `depthwise`, `conv_fft`, `workspace`.
"""
