"""Answer-format environment: 200+ output formats from a data catalog (catalog.toml), strict validators that
extract the answer, procedural questions with known answers. See env.AnswerFormatEnv."""

from .catalog import CATALOG, CatalogError, Format, load_catalog
from .env import AnswerFormatEnv
from .match import matches
from .validators import Check, Spec

__all__ = ["AnswerFormatEnv", "CATALOG", "CatalogError", "Check", "Format", "Spec", "load_catalog", "matches"]
