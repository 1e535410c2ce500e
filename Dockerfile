# The genesys-export image: the CLI in a venv, run as a non-root user, writing to /data.
#
#   podman build -t genesys-export:0.1.0 .        (or: docker build -t genesys-export:0.1.0 .)
#
# It holds no config.toml (the repository's selects the bundled sandbox): mount one at
# /etc/genesys-export/config.toml, in the working directory, so a bare `run` reads it, and
# give the credentials as GENESYSCLOUD_REGION, GENESYSCLOUD_OAUTHCLIENT_ID and
# GENESYSCLOUD_OAUTHCLIENT_SECRET. deploy/kubernetes shows both.

# Any image with Python 3.11+ whose `python3` has venv and pip. tests/test_image.py builds on
# Debian bookworm's python3 (made with debootstrap: no image registry is reachable there).
ARG BASE=python:3.11-slim

FROM ${BASE} AS build
# The extras installed with it: lakehouse (obstore, pyarrow, deltalake, pyiceberg) lets `run`
# publish when [publish] says where; --build-arg EXTRAS= leaves them out (about 250 MB less)
# for a schedule that only exports and builds.
ARG EXTRAS=lakehouse
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY exporter exporter
COPY genesys_sandbox genesys_sandbox
# A venv: the runtime dependencies only (no test or bench extras), and on Debian's python3 the
# clean way past its "externally managed environment". Every dependency ships wheels (aiohttp,
# duckdb, msgspec, orjson, zstandard, pyarrow, deltalake...), so no compiler is needed; pip and setuptools leave
# the venv afterwards, as the runtime uses neither.
RUN python3 -m venv /opt/genesys-export \
 && /opt/genesys-export/bin/python -m pip install --no-cache-dir ".${EXTRAS:+[$EXTRAS]}" \
 && /opt/genesys-export/bin/python -m pip uninstall --yes --quiet pip setuptools

FROM ${BASE}
ARG VERSION=0.1.0
ARG SOURCE=""
ARG REVISION=""
LABEL org.opencontainers.image.title="genesys-export" \
      org.opencontainers.image.description="Bulk export of Genesys Cloud data to JSONL, DuckDB and Parquet" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.revision="${REVISION}"

# A numeric user, so Kubernetes can check runAsNonRoot against the image (deploy/kubernetes
# runs as the same 10001); /data, the output volume, is the one place it writes.
RUN groupadd --gid 10001 genesys \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin genesys \
 && mkdir -p /data /etc/genesys-export \
 && chown 10001:10001 /data
COPY --from=build /opt/genesys-export /opt/genesys-export

ENV PATH=/opt/genesys-export/bin:$PATH \
    LANG=C.UTF-8 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
# Where the config is mounted, and empty in the image: a run finds ./config.toml only if one
# was mounted here, never a stray one from the output volume or a build context.
WORKDIR /etc/genesys-export
VOLUME ["/data"]
USER 10001:10001
# No HEALTHCHECK: a run is a batch job that exits with its status (0 ok, 4 run again later,
# 75 another run holds the folder...); there is no long-lived process for a probe to ask.
ENTRYPOINT ["genesys-export"]
CMD ["run"]
