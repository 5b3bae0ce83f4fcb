# One image for the four services; the first argument picks one:
#   docker run IMAGE controller|collector|optimizer|actuator
# Build (README, "Deploy to a cluster"):
#   docker build -t inferno-autoscaler:0.1.0 --build-arg VERSION=0.1.0 .
# Build arguments, all optional:
#   BASE_IMAGE     a Debian-like image with python3 (3.11) and its venv module, used by both stages
#                  (default python:3.11-slim; scripts/build-image.sh makes a Debian bookworm one with
#                  mmdebstrap when no registry is reachable)
#   PIP_INDEX_URL  the package index pip downloads the locked wheels from (default PyPI); it is kept in
#                  the build history, so an index URL with credentials belongs in a pip.conf secret
#   VERSION, REVISION, SOURCE  OCI labels (version, git commit, repository URL)
# Secrets, optional: `--secret id=pip-ca,src=ca.pem` (a CA bundle for an intercepting proxy or a
# private index), `--secret id=pip-conf,src=pip.conf` (index credentials); neither lands in a layer.
# Dependencies come from requirements.lock only (exact versions, every file's hash): see
# scripts/lock.sh. Any failure fails the build.
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS build
ARG PIP_INDEX_URL=
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python3 -m venv /opt/venv
# The locked dependencies are one layer, rebuilt only when requirements.lock changes: wheels only,
# hashes checked, no resolver (--no-deps: the lock is complete). Their test suites, type stubs and
# Cython sources go, and so does kubernetes.aio (the asyncio twin of the client, 68 MB, imported by
# nothing here). No bytecode yet: see the next step.
COPY requirements.lock ./
RUN --mount=type=secret,id=pip-ca --mount=type=secret,id=pip-conf \
    set -eu; \
    if [ -s /run/secrets/pip-ca ]; then export PIP_CERT=/run/secrets/pip-ca; fi; \
    if [ -s /run/secrets/pip-conf ]; then export PIP_CONFIG_FILE=/run/secrets/pip-conf; fi; \
    if [ -n "${PIP_INDEX_URL}" ]; then export PIP_INDEX_URL; else unset PIP_INDEX_URL; fi; \
    /opt/venv/bin/pip install --require-hashes --no-deps --only-binary=:all: --no-compile \
      -r requirements.lock; \
    site=$(/opt/venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'); \
    find "$site" -depth -type d \( -name tests -o -name __pycache__ \) -exec rm -rf {} +; \
    rm -r "$site/kubernetes/aio"; \
    find "$site" -type f \( -name '*.pyi' -o -name '*.pxd' -o -name '*.pyx' \) -delete

# The services (.dockerignore lets in only their packages), built offline with the locked setuptools.
# Then pip and setuptools go; scripts/image_bytecode.py imports every service module and compiles
# the bytecode of all it loaded (the root filesystem is read-only at run time, so a module without
# it is compiled again at every start: the kubernetes client alone is 30 MB of source), and each
# service must start far enough to print its settings. An image without the project cannot be tagged.
COPY . ./
RUN set -eu; \
    /opt/venv/bin/pip install --no-index --no-deps --no-build-isolation --no-compile .; \
    /opt/venv/bin/pip uninstall --yes setuptools pip; \
    /opt/venv/bin/python scripts/image_bytecode.py; \
    for service in collector optimizer actuator controller; do \
      /opt/venv/bin/python -m plumbing.entry "$service" --help-settings > /dev/null; \
    done

# The final stage puts its metadata first and the large copy last: with vfs storage (buildah on
# hosts without overlay) every step after the copy would walk all 400 MB again.
FROM ${BASE_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG SOURCE=
LABEL org.opencontainers.image.title="inferno-autoscaler" \
      org.opencontainers.image.description="Kubernetes autoscaler for vLLM inference servers: controller, collector, optimizer and actuator" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
WORKDIR /tmp
EXPOSE 3300 3301 3302 3303
ENTRYPOINT ["python", "-m", "plumbing.entry"]
CMD ["controller"]
RUN echo 'inferno:x:10001:10001:inferno:/nonexistent:/usr/sbin/nologin' >> /etc/passwd \
 && echo 'inferno:x:10001:' >> /etc/group
USER 10001:10001
COPY --from=build /opt/venv /opt/venv
