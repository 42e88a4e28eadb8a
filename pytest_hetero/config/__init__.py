"""Platform catalogue: frozen models (:mod:`.models`), the schema-checked loader (:mod:`.loader`).

The package itself imports only the models, so the registries (which type
their arguments with :class:`Platform`) and the loader (which checks kinds
against the registries) import each other in one direction only.
"""

from pytest_hetero.config.models import Catalogue, Platform

__all__ = ["Catalogue", "Platform"]
