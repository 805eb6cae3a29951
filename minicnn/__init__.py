"""minicnn: a pure-NumPy engine where every equation of a convolutional-networks course is
short, visible, tested code.

    from minicnn.core import Parameter, Layer, Sequential
    from minicnn import layers, functional, losses, optim
    from minicnn.models import build
    from minicnn.app import fit, load_model

The package, in dependency order (each part imports only from the parts above it;
tests/test_architecture.py checks this):

    core.py          Parameter, Layer, Sequential, the engine's random generator
    files.py         checked .npz / .npy reading and atomic saving (every file the engine reads)
    runtime.py       runtime settings, read when used: runtime.configure(threads=2), the kernel
                     switch (runtime.plain(), MINICNN_PLAIN=1, `minicnn --plain`)
    threads.py       the thread counts, read at each call, and the pool that splits a batch
    functional/      the math: stateless functions on arrays, one equation each
    kernels/         the same math, fast: each kernel has the signature of its plain twin
    layers/          stateful layers over functional/; each answers its output shape and cost
    losses.py, optim.py, gradcheck.py, data/      what training and checking use
    analysis.py      counts a network (shapes, parameters, multiply-adds, receptive fields)
    models/          architectures from layers/, registered by name: models.build(name, **config)
    app/             the application tier: fit (the training loop), checkpoints, frequency
                     regularisation of whole models, load_model, the spiral demo
    experiments/, commands/, cli.py   the front ends: measured studies and the `minicnn` command
"""

__version__ = "0.1.0"
