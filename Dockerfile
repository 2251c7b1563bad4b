# The clipcap image: Debian 12, built by scripts/setup.sh, the binary on PATH.
# The recipes in deploy/ run it as clipcap:latest:
#
#   docker build -t clipcap:latest .
#   docker run --rm clipcap:latest doctor
#
# By default it uses Debian's CPU libtorch. For GPUs, point the build at an
# official CUDA libtorch archive (cxx11 ABI, shared, with deps); its CUDA
# libraries travel with it and the host's driver comes in through the NVIDIA
# container toolkit:
#
#   docker build -t clipcap:latest --build-arg LIBTORCH_URL=https://download.pytorch.org/libtorch/cu117/libtorch-cxx11-abi-shared-with-deps-1.13.1%2Bcu117.zip .

# --- build: Go, g++, libtorch, gotch prepared for it, the tokenizer files ---
FROM golang:1.26-bookworm AS build
ARG LIBTORCH_URL=
ENV CLIPCAP_CACHE=/opt/clipcap/cache
RUN apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends npm unzip \
 && rm -rf /var/lib/apt/lists/*
RUN mkdir -p /opt/libtorch && if [ -n "$LIBTORCH_URL" ]; then \
      curl -fsSL -o /tmp/libtorch.zip "$LIBTORCH_URL" && unzip -q /tmp/libtorch.zip -d /opt && rm /tmp/libtorch.zip; \
    fi
WORKDIR /src
COPY . .
# setup.sh installs the missing Debian packages (libtorch-dev, OpenBLAS, libjpeg, ffmpeg) unless
# LIBTORCH names another libtorch, prepares gotch, fetches the tokenizer and builds bin/clipcap.
RUN if [ -n "$LIBTORCH_URL" ]; then export LIBTORCH=/opt/libtorch; fi \
 && rm -rf third_party bin \
 && scripts/setup.sh \
 && bin/clipcap doctor

# --- runtime: the shared libraries the binary loads, nothing to build with ---
FROM debian:bookworm-slim
ARG LIBTORCH_URL=
RUN apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      libjpeg62-turbo ffmpeg ca-certificates curl \
      $([ -z "$LIBTORCH_URL" ] && echo libtorch1.13 libopenblas0-pthread) \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/libtorch /opt/libtorch
COPY --from=build /opt/clipcap/cache/tokenizer /opt/clipcap/cache/tokenizer
COPY --from=build /src/bin/clipcap /usr/local/bin/clipcap
COPY configs /opt/clipcap/configs
# Downloads (clipcap download) land in the cache: mount a volume there to keep them.
ENV CLIPCAP_CACHE=/opt/clipcap/cache
WORKDIR /opt/clipcap
RUN clipcap doctor && clipcap tokenize "A man riding a horse."
ENTRYPOINT ["clipcap"]
CMD ["--help"]
