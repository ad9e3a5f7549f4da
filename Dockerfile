# The metastream worker, built from this repository. torch is pinned to the CPU build by constraints.txt.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY learners learners
COPY streams streams
COPY schemas schemas
RUN pip install --no-cache-dir -c constraints.txt -e '.[worker]'
ENV METASTREAM_METRICS_PORT=9108
EXPOSE 9108
CMD ["metastream", "worker"]
