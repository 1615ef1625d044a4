"""prelu._io: output plumbing shared by every layer. Tables rendered as text.

Imports nothing from :mod:`prelu`.
"""
