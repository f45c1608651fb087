FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    BWE_HOST=0.0.0.0 BWE_PORT=8080

WORKDIR /app

# The dependencies in a layer of their own, from pyproject.toml alone: a change to the code
# does not reinstall them.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
      > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

# Then the emulator itself (the ready-made scenarios ship inside it: --scenario NAME).
COPY README.md LICENSE ./
COPY emulator ./emulator
RUN pip install --no-deps . \
 && useradd --system --uid 10001 --no-create-home emulator \
 && mkdir /data && chown emulator /data

# A writable place for --db (e.g. `-v bwe-data:/data -e BWE_DB=/data/emulator.db`).
VOLUME /data

USER emulator
EXPOSE 8080
# Follows BWE_PORT, the way to change the port in a container.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD python -c "import os, sys, urllib.request; url = 'http://127.0.0.1:%s/_emulator/health' % os.environ.get('BWE_PORT', '8080'); sys.exit(0 if urllib.request.urlopen(url, timeout=2).status == 200 else 1)"
ENTRYPOINT ["bandwidth-emulator"]
CMD ["serve"]
