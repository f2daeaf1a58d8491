"""Derivatives beyond the gradient, by hand: JVP, Hessian- and Gauss-Newton-vector products, per-example
and input gradients.

Imports: ``maths`` and the package's root modules.
"""
