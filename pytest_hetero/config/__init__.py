"""Platform catalogue: schema, loader and frozen models."""

from pytest_hetero.config.loader import builtin_catalogue, load_catalogue, parse_catalogue
from pytest_hetero.config.models import Catalogue, Platform

__all__ = ["Catalogue", "Platform", "builtin_catalogue", "load_catalogue", "parse_catalogue"]
