"""A user's notebook or file graded: loading it, running notebooks, the worker process that runs untrusted
code, the battery, grading the forward and the backward pass, the diagnoses and the chain, link by link.

Imports: ``checks``, ``fd``, ``compare``, ``maths`` and the package's root modules.
"""
