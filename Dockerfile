# WECARE.DIGITAL: one image for every role (web, worker, bulk-worker, beat, migrate).
# Build: docker build -t base-wecare-digital:$(git rev-parse --short HEAD) .
# Run:   docker run ... IMAGE web      (scripts/entrypoint.sh checks the AWS resources, then starts the role)
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    APP_DIR=/app \
    PORT=8000

WORKDIR /app

# Pinned requirements first: this layer is rebuilt only when they change.
COPY requirements.txt .
RUN pip install -r requirements.txt && pip check

COPY . .

# Static files are collected into the image (served by WhiteNoise); the build needs no AWS and no secret.
RUN ENVIRONMENT=local SEND_MODE=DRY_RUN DATABASE_URL=sqlite:////tmp/build.sqlite3 \
    python manage.py collectstatic --noinput --verbosity 0 && rm -f /tmp/build.sqlite3

# Never root: a system user without a shell owns nothing but what it must write.
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin wecare
USER wecare

EXPOSE 8000
ENTRYPOINT ["/app/scripts/entrypoint.sh"]
CMD ["web"]
