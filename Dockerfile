# The SocialPulse worker, gateway, Slack stub and simulator image used by docker-compose.yml.
FROM python:3.11-slim
# jemalloc for the worker (socialpulse/app/allocator.py: it re-executes itself on it).
RUN apt-get update && apt-get install -y --no-install-recommends libjemalloc2 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY socialpulse ./socialpulse
COPY streams ./streams
COPY alerts ./alerts
COPY ingest ./ingest
RUN pip install --no-cache-dir .
COPY config ./config
ENV SOCIALPULSE_HOME=/app
USER nobody
CMD ["socialpulse", "worker"]
