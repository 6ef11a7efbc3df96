FROM python:3.11-slim

WORKDIR /app
# CPU torch first, from PyTorch's CPU index: PyPI's default build carries GBs of CUDA.
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml README.md ./
COPY api ./api
COPY index ./index
COPY qa ./qa
COPY prompts ./prompts
COPY seeds ./seeds
RUN pip install --no-cache-dir .

ENV CITEQA_DATA_DIR=/data \
    CITEQA_SEEDS_DIR=/app/seeds \
    CITEQA_HOST=0.0.0.0 \
    HF_HUB_OFFLINE=1 \
    OMP_WAIT_POLICY=PASSIVE
VOLUME /data
EXPOSE 8000
HEALTHCHECK CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz')"
CMD ["citeqa", "serve"]
