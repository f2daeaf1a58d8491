"""Backward passes with the notebook's signature: the notebook's own, a batch-aware one, and broken ones."""
