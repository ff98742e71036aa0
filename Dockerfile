# mxproxy: drop-in replacement for MX Proxy 2.3.
#
#   docker build -t mxproxy .
#   docker run -p 8000:8000 -v $PWD/config:/config -v mxproxy-db:/db mxproxy
#
# /config must hold mxproxy.toml (see config.toml.example); /db keeps the store (users, device
# tokens, signing keys) across restarts. `docker stop` sends SIGTERM: the proxy stops accepting,
# finishes in-flight requests, logs out of every MX session and closes the store.
#
# The admin API listens on 127.0.0.1:8043 *inside* the container, so it is reachable only with
# `docker exec <container> python -c ...` or from a sidecar sharing the network namespace. To
# publish it, protect it with a token and bind all interfaces:
#   [server] adminToken = "env:MXPROXY_ADMIN_TOKEN"      (in mxproxy.toml)
#   docker run -e ADMIN=0.0.0.0:8043 -e MXPROXY_ADMIN_TOKEN=... -p 127.0.0.1:8043:8043 ...
# mxproxy refuses a non-loopback admin bind without adminToken.

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md* ./
COPY mxproxy ./mxproxy
COPY admin ./admin
RUN pip install . \
    && groupadd --system --gid 10001 mxproxy \
    && useradd --system --uid 10001 --gid mxproxy --home-dir /nonexistent --shell /usr/sbin/nologin mxproxy \
    && mkdir -p /config /db \
    && chown mxproxy:mxproxy /db

# PORT/ADMIN are read by `mxproxy serve` (flags win over them, both win over [server]). The store
# is not set here, so `-e DB=postgresql://...` and `[server] db` both work; without either it is
# MXPROXY_DEFAULT_DB, in the /db volume.
ENV PORT=8000 \
    ADMIN=127.0.0.1:8043 \
    MXPROXY_DEFAULT_DB=/db/mxproxy.db

USER mxproxy
VOLUME ["/config", "/db"]
EXPOSE 8000

# Liveness: the admin API's /healthz, asked from inside the container (loopback bind suffices).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 CMD ["mxproxy", "healthcheck"]

# logName in mxproxy.toml should point somewhere writable, e.g. "/db/mxproxy.log"; an unwritable
# log file is reported and skipped (logs always go to stderr as well).
ENTRYPOINT ["mxproxy"]
CMD ["serve", "--config", "/config/mxproxy.toml"]
