"""Errors of the geovec installation itself (not of the user's input: that is :class:`geovec.GeoVecInputError`)."""

from __future__ import annotations


class GeoVecSetupError(ImportError):
    """A package geovec needs is missing; the message is one line that names the command installing it."""


GEOCLIP_INSTALL = "pip install --no-deps geoclip==1.3.0"


def geoclip_missing() -> GeoVecSetupError:
    return GeoVecSetupError(
        "geovec needs the GeoCLIP location encoder (package geoclip, installed without its torchvision "
        f"dependency): run `{GEOCLIP_INSTALL}`")
