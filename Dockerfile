# syntax=docker/dockerfile:1
# One image for the four services; the first argument picks one:
#   docker run IMAGE controller|collector|optimizer|actuator
# Build: docker build -t inferno-autoscaler:latest .

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/venv
# dependencies first, so source edits do not re-resolve them
COPY pyproject.toml README* ./
COPY plumbing ./plumbing
COPY contract ./contract
COPY optimizer ./optimizer
COPY collector ./collector
COPY actuator ./actuator
COPY controller ./controller
RUN /opt/venv/bin/pip install . && /opt/venv/bin/pip uninstall -y pip setuptools wheel || true

FROM python:3.11-slim
RUN groupadd --gid 10001 inferno \
 && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin inferno
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
WORKDIR /tmp
USER 10001:10001
EXPOSE 3300 3301 3302 3303
ENTRYPOINT ["python", "-m", "plumbing.entry"]
CMD ["controller"]
