# The bridge daemon as a container. In production point it at the Supabase
# database (DATABASE_URL) and project (SUPABASE_URL, SUPABASE_JWT_SECRET).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    BRIDGE_SERVER_ENVIRONMENT=production BRIDGE_DATABASE_SUPABASE_DIR=/app/supabase

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bridge ./bridge
RUN pip install --no-cache-dir . && useradd --system --uid 10001 bridge
COPY supabase ./supabase
COPY config.toml ./

USER bridge
EXPOSE 3000
# `bridge health` reads the same settings as the daemon, so it follows
# SOCKET_PORT / BRIDGE_SERVER_PORT.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s CMD ["bridge", "health"]
CMD ["bridge", "run"]
