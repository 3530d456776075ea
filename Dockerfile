# syntax=docker/dockerfile:1
# Multi-stage image: build the virtualenv from the lock file, then a slim runtime as a non-root user.
# The same image runs the web server (default), a worker and beat (see compose.yaml).

FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
COPY requirements.lock /tmp/requirements.lock
RUN /opt/venv/bin/pip install -r /tmp/requirements.lock

FROM python:3.11-slim AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=config.settings \
    VAR_DIR=/app/var
RUN groupadd --system shop && useradd --system --gid shop --home-dir /app --shell /usr/sbin/nologin shop
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY --chown=shop:shop . /app
# Static files are collected at build time and served by whitenoise. The key is thrown away with this layer.
RUN SECRET_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(50))')" DEBUG=0 ALLOWED_HOSTS=build \
        python manage.py collectstatic --noinput \
    && mkdir -p /app/var/media \
    && chown -R shop:shop /app/var
USER shop
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"
CMD ["gunicorn", "-c", "config/gunicorn.conf.py", "config.wsgi"]
