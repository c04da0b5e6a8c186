"""Kubernetes Deployment, Service and Ingress for the app, in one multi-document file."""

from __future__ import annotations

from typing import Any

from .. import yamldoc
from ..params import Params
from .rendered import Rendered

DEFAULT_REPLICAS = 2


def _probe(path: str) -> dict[str, Any]:
    return {"httpGet": {"path": path, "port": "http"}, "periodSeconds": 10}


def _container(p: Params, port: int, image: str) -> dict[str, Any]:
    static = p.app in ("spa", "static")
    health = "/" if static else "/healthz"
    if not static:
        p.assume("the app answers GET /healthz when healthy (readiness and liveness probes)")
    container: dict[str, Any] = {
        "name": p.name,
        "image": image,
        "ports": [{"name": "http", "containerPort": port}],
        "readinessProbe": _probe(health),
        "livenessProbe": {**_probe(health), "initialDelaySeconds": 10},
        "resources": {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"memory": "256Mi" if p.app in ("go", "spa", "static") else "512Mi"},
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    if not static:  # the nginx image's master runs as root; the app images need not
        container["securityContext"]["runAsNonRoot"] = True
    container["env"] = [
        {"name": "APP_ENV", "value": p.environment},
        {"name": "PORT", "value": str(port)},
    ]
    return container


def _ingress(p: Params, namespace: str, labels: dict[str, str]) -> dict[str, Any]:
    host = p.domain
    annotations: dict[str, str] = {}
    if p.tls:
        annotations["cert-manager.io/cluster-issuer"] = "letsencrypt"
    if p.websocket:
        annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"] = "3600"
        annotations["nginx.ingress.kubernetes.io/proxy-send-timeout"] = "3600"
    if p.rate_limit is not None:
        annotations["nginx.ingress.kubernetes.io/limit-rps"] = str(p.rate_limit)
    metadata: dict[str, Any] = {"name": p.name, "namespace": namespace, "labels": labels}
    if annotations:
        metadata["annotations"] = annotations
    spec: dict[str, Any] = {
        "ingressClassName": "nginx",
        "rules": [
            {
                "host": host,
                "http": {
                    "paths": [
                        {
                            "path": "/",
                            "pathType": "Prefix",
                            "backend": {"service": {"name": p.name, "port": {"name": "http"}}},
                        }
                    ]
                },
            }
        ],
    }
    if p.tls:
        spec["tls"] = [{"hosts": [host], "secretName": f"{p.name}-tls"}]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": metadata,
        "spec": spec,
    }


def render(p: Params) -> Rendered:
    """Deployment + Service + Ingress for p."""
    p.uses("app", "port", "name", "environment", "rate")
    port = 80 if p.app in ("spa", "static") else p.port
    replicas = p.replicas or DEFAULT_REPLICAS
    if p.replicas is None:
        p.assume(f"{DEFAULT_REPLICAS} replicas")
    image = f"registry.example.com/{p.name}:1.0.0"
    p.assume(f"the image is {image} (replace with yours)")
    namespace = p.environment
    labels = {"app.kubernetes.io/name": p.name, "app.kubernetes.io/part-of": p.name}
    selector = {"app.kubernetes.io/name": p.name}
    meta = {"name": p.name, "namespace": namespace, "labels": labels}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [_container(p, port, image)]},
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {
            "type": "ClusterIP",
            "selector": selector,
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
        },
    }
    ingress = _ingress(p, namespace, labels)
    notes = [
        f"Deployment of {replicas} replica(s) rolling one pod at a time with no downtime, a "
        f"ClusterIP Service on port 80 and an Ingress (class nginx) for {p.domain}.",
        f"Everything lives in the namespace {namespace} (`kubectl create namespace "
        f"{namespace}`); apply with `kubectl apply -f {p.name}.yaml`.",
    ]
    if p.tls:
        notes.append(
            f"TLS: cert-manager's ClusterIssuer `letsencrypt` fills the secret {p.name}-tls."
        )
    code = yamldoc.dump_all(
        [deployment, service, ingress], f"{p.name} ({p.environment}): {p.framework} on Kubernetes"
    )
    return Rendered(code, "yaml", f"{p.name}.yaml", notes)
