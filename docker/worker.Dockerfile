# A render worker. ORT_FLAVOR=Cpu (default) runs anywhere; ORT_FLAVOR=Gpu references
# Microsoft.ML.OnnxRuntime.Gpu.Linux 1.32.0 (restores from nuget.org and from the dev machines' mirror; CI compiles this flavour)
# and runs on NVIDIA's CUDA 12 + cuDNN 9 runtime, which that package needs next to the driver.
#   docker build -f docker/worker.Dockerfile -t renderfarm/worker .
#   docker build -f docker/worker.Dockerfile --build-arg ORT_FLAVOR=Gpu --build-arg BASE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04 -t renderfarm/worker:cuda .
ARG BASE=mcr.microsoft.com/dotnet/runtime-deps:10.0
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
ARG ORT_FLAVOR=Cpu
WORKDIR /src
COPY . .
# Self-contained, so the CUDA base image needs no .NET runtime of its own.
RUN dotnet publish src/RenderFarm.Worker -c Release -r linux-x64 --self-contained -p:OrtFlavor=${ORT_FLAVOR} -o /app

FROM ${BASE}
WORKDIR /app
COPY --from=build /app .
# Models are cached here (tiny-sd is generated on first use); mount a volume to keep them across restarts.
# CUDA counts GPUs in NVML's order, so --gpu N and the heartbeat's probe name the same card (src/RenderFarm.Worker/README.md).
ENV RENDERFARM_HOME=/data \
    DOTNET_gcServer=0 \
    CUDA_DEVICE_ORDER=PCI_BUS_ID
VOLUME /data
ENTRYPOINT ["./RenderFarm.Worker"]
