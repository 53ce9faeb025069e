"""File-system primitives that know nothing of this package: atomic writes
(``atomic``) and descriptor-relative access that follows no link (``nofollow``)."""
