#!/usr/bin/env bash
# Renders the plain manifests (deploy/kubernetes/otel-rust-agent.yaml) from
# the Helm chart with its default values, for clusters without Helm:
#   kubectl apply -f deploy/kubernetes/otel-rust-agent.yaml
# `make manifests` runs it; a test checks the committed file is its output.
# Usage: render.sh [HELM]   (prints the manifests on stdout)
set -euo pipefail
cd "$(dirname "$0")/../.."
helm=${1:-$(scripts/deploy-tools.sh helm)}
cat <<'HEAD'
# otel-rust-agent: one agent per node, as plain Kubernetes objects.
# Rendered from deploy/helm/otel-rust-agent with its default values by
# `make manifests` (helm template); edit the chart, not this file.
# Set the image and the collector endpoint (OTEL_EXPORTER_OTLP_ENDPOINT in the
# ConfigMap) for your cluster before applying.
---
apiVersion: v1
kind: Namespace
metadata:
  name: otel-rust-agent
  labels:
    # hostPID and the added capabilities are only admitted at this level.
    pod-security.kubernetes.io/enforce: privileged
HEAD
"$helm" template otel-rust-agent deploy/helm/otel-rust-agent --namespace otel-rust-agent --kube-version 1.31.0
