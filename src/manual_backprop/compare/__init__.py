"""Comparing gradients: the forms a gradient comes in (pairs, lists, dicts, trees), tensor-by-tensor rows,
the reports built from them and how they are drawn in a notebook.

Imports: only the package's root modules.
"""
