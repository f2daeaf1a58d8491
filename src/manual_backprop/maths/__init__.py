"""The reference maths: the network, its activations and losses, and backpropagation by hand (the book's
equations, section 7.4), with the derivatives beyond the gradient in ``maths.derivatives``.

Imports: only the package's root modules (``validate``, ``objective``, ``_types``).
"""
