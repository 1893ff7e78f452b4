"""Errors of the geovec installation itself (not of the user's input: that is :class:`geovec.GeoVecInputError`)."""

from __future__ import annotations


class GeoVecSetupError(ImportError):
    """A package geovec needs is missing; the message is one line that names the command installing it."""
