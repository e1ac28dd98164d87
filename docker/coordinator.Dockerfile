# The coordinator: ASP.NET Core API, EF Core migrations applied at start, outbox dispatcher, rescuer.
# Build from the repository root: docker build -f docker/coordinator.Dockerfile -t renderfarm/coordinator .
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
COPY . .
RUN dotnet publish src/RenderFarm.Coordinator -c Release -o /app --no-self-contained

FROM mcr.microsoft.com/dotnet/aspnet:10.0
WORKDIR /app
COPY --from=build /app .
ENV ASPNETCORE_URLS=http://+:8080 \
    DOTNET_gcServer=1
EXPOSE 8080
# Probes: GET /alive (liveness) and /health (readiness); the aspnet image has no curl, so orchestrators probe over HTTP.
USER app
ENTRYPOINT ["dotnet", "RenderFarm.Coordinator.dll"]
