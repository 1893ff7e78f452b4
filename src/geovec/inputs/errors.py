"""The one error type for bad user input."""

from __future__ import annotations


class GeoVecInputError(ValueError):
    """A user-supplied item cannot be embedded.

    ``index`` is the position of the item in the call (``None`` when there is no list), ``problem`` a
    short human-readable reason. The message always names both, e.g.
    ``item 3: box [10, 10, 300, 40] lies outside the 256x256 image``.
    """

    def __init__(self, problem: str, index: int | None = None, source: str | None = None):
        self.problem = problem
        self.index = index
        self.source = source
        where = f"item {index}" if index is not None else "item"
        if source:
            where += f" ({source})"
        super().__init__(f"{where}: {problem}")

    def at(self, index: int | None) -> "GeoVecInputError":
        """The same problem, re-addressed to a position in a larger call."""
        return GeoVecInputError(self.problem, index=index, source=self.source)
