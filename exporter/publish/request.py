"""What one publish is asked to do: which folder's tables, in which format, to where."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from exporter.config_rules import RULES, coerce
from exporter.errors import ConfigError

Format = Literal["parquet", "delta", "iceberg"]
FORMATS: tuple[str, ...] = get_args(Format)


@dataclass(frozen=True, slots=True)
class PublishRequest:
    """The tables of ``out_dir`` to publish: as Parquet or Delta under ``to`` (an object
    storage URL), or as Iceberg tables in ``namespace`` of the pyiceberg catalog ``catalog``.
    A key the format does not use is ignored (a config file may name both kinds).
    ``keep_history``: leave the Delta and Iceberg versions from before a forget (``history``).
    """

    out_dir: Path
    format: Format
    to: str = ""
    catalog: str = ""
    namespace: str = "genesys"
    keep_history: bool = False

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ConfigError(
                f"--format {self.format!r} is not a format; choose parquet, delta or iceberg."
            )
        if self.format == "iceberg":
            self._check_iceberg()
            return
        if not self.to:
            raise ConfigError(
                f"--format {self.format} needs --to, the object storage URL to publish under "
                "(s3://BUCKET/PREFIX, gs://... or az://...), or to under [publish] in "
                "config.toml."
            )
        object.__setattr__(self, "to", coerce(RULES["publish"]["to"], self.to, "--to"))

    def _check_iceberg(self) -> None:
        if not self.catalog:
            raise ConfigError(
                "--format iceberg needs --catalog, the name of a pyiceberg catalog "
                "(configured in .pyiceberg.yaml or PYICEBERG_CATALOG__<NAME>__URI and the "
                "rest), or catalog under [publish] in config.toml."
            )
        if not self.namespace.strip(". "):
            raise ConfigError("--namespace must name an Iceberg namespace, such as genesys.")

    @property
    def destination(self) -> str:
        """Where the tables go, as messages name it."""
        if self.format == "iceberg":
            return f"Iceberg catalog {self.catalog} namespace {self.namespace}"
        return self.to
