"""What combines witnesses into a verdict: the three-way check, the check of the derivatives beyond the
gradient, any user's gradient or layer VJP, and the pytest helper. The oracle (``jax.grad``) is imported
inside the checks that need it.

Imports: ``fd``, ``compare``, ``maths`` and the package's root modules.
"""
