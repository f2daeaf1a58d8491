"""Finite differences: the perturbation sweep, its steps and limits, the three-way check's witness with the
kink rule, the directional and Taylor checks, and differences of any user's loss over a tree.

Imports: ``compare``, ``maths`` and the package's root modules.
"""
