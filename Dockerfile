FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    BWE_HOST=0.0.0.0 BWE_PORT=8080

WORKDIR /app
COPY pyproject.toml README.md ./
COPY emulator ./emulator
COPY scenarios ./scenarios
RUN pip install . && useradd --system --uid 10001 --no-create-home emulator

USER emulator
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/_emulator/health', timeout=2).status == 200 else 1)"
ENTRYPOINT ["bandwidth-emulator"]
CMD ["serve"]
