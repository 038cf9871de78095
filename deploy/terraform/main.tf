locals {
  chart_path = coalesce(var.chart_path, "${path.module}/../helm/floodgate")

  namespaces = { for r in keys(var.regions) : r => "${var.namespace_prefix}-${r}" }

  # Each region's worker Service, as the other regions' gateways reach it.
  worker_urls = {
    for r, ns in local.namespaces : r => "http://${var.release_name}-worker.${ns}.svc:8080"
  }

  # Each region's service URLs: its own entry in var.service_urls, else "default".
  service_urls = {
    for r in keys(var.regions) : r => lookup(var.service_urls, r, lookup(var.service_urls, "default", null))
  }

  worker_key_enabled = nonsensitive(var.worker_key != "")

  region_values = {
    for r, cfg in var.regions : r => {
      fullnameOverride = var.release_name
      region           = r
      image = {
        repository = var.image.repository
        tag        = var.image.tag
        digest     = var.image.digest
      }
      models = [for m in var.models : { name = m.name, worker = m.worker_toml, gateway = m.gateway_toml }]
      externalServices = {
        postgresql = { existingSecret = "floodgate-services", secretKey = "postgres-url" }
        redis      = { existingSecret = "floodgate-services", secretKey = "redis-url" }
        nats       = { existingSecret = "floodgate-services", secretKey = "nats-url" }
      }
      secrets = {
        workerKey = { existingSecret = local.worker_key_enabled ? "floodgate-services" : "", secretKey = "worker-key" }
      }
      gateway = {
        image = { tag = var.image.gateway_tag != "" ? var.image.gateway_tag : var.image.tag }
        extraEndpoints = concat(
          [for other, url in local.worker_urls : {
            url       = url
            region    = other
            apiKeyEnv = local.worker_key_enabled ? "FLOODGATE_WORKER_KEY" : ""
          } if other != r],
          [for e in var.remote_worker_endpoints : {
            url       = e.url
            region    = e.region
            apiKeyEnv = local.worker_key_enabled ? "FLOODGATE_WORKER_KEY" : ""
          }],
        )
        autoscaling = {
          enabled     = true
          minReplicas = cfg.gateway_min_replicas
          maxReplicas = cfg.gateway_max_replicas
        }
        resources = {
          requests = { cpu = cfg.gateway_resources.cpu_request, memory = cfg.gateway_resources.memory_request }
          limits   = { cpu = cfg.gateway_resources.cpu_limit, memory = cfg.gateway_resources.memory_limit }
        }
      }
      worker = {
        replicas   = cfg.worker_replicas
        requireKey = local.worker_key_enabled
        autoscaling = {
          mode        = var.worker_autoscaling
          minReplicas = cfg.worker_replicas
          maxReplicas = cfg.worker_max_replicas
          keda        = { serverAddress = var.prometheus_url }
        }
        resources = {
          requests = { cpu = cfg.worker_resources.cpu_request, memory = cfg.worker_resources.memory_request }
          limits   = { cpu = cfg.worker_resources.cpu_limit, memory = cfg.worker_resources.memory_limit }
        }
      }
      analytics = {
        enabled = cfg.analytics_enabled
      }
      metrics = {
        serviceMonitor = { enabled = var.service_monitor }
      }
      networkPolicy = {
        enabled = true
        gatewayFrom = [{
          namespaceSelector = { matchLabels = { "kubernetes.io/metadata.name" = var.ingress_namespace } }
        }]
        metricsFrom = [{
          namespaceSelector = { matchLabels = { "kubernetes.io/metadata.name" = var.monitoring_namespace } }
        }]
        # The other regions' gateways fail over to this region's workers.
        workerFrom = [for other, ns in local.namespaces : {
          namespaceSelector = { matchLabels = { "kubernetes.io/metadata.name" = ns } }
          podSelector       = { matchLabels = { "app.kubernetes.io/component" = "gateway" } }
        } if other != r]
      }
    }
  }
}

resource "kubernetes_namespace_v1" "region" {
  for_each = local.namespaces

  metadata {
    name = each.value
    labels = {
      "app.kubernetes.io/part-of"                  = "floodgate"
      "floodgate.io/region"                        = each.key
      "pod-security.kubernetes.io/enforce"         = "restricted"
      "pod-security.kubernetes.io/enforce-version" = "latest"
    }
  }
}

# The URLs with their passwords, and the workers' key, as one Secret per region that the
# chart references by name (existingSecret); the pods read them as environment variables.
resource "kubernetes_secret_v1" "services" {
  for_each = local.namespaces

  metadata {
    name      = "floodgate-services"
    namespace = kubernetes_namespace_v1.region[each.key].metadata[0].name
    labels = {
      "app.kubernetes.io/part-of" = "floodgate"
    }
  }

  data = {
    "postgres-url" = local.service_urls[each.key].postgres_url
    "redis-url"    = local.service_urls[each.key].redis_url
    "nats-url"     = local.service_urls[each.key].nats_url
    "worker-key"   = var.worker_key
  }

  type = "Opaque"
}

resource "helm_release" "floodgate" {
  for_each = local.namespaces

  name      = var.release_name
  namespace = kubernetes_namespace_v1.region[each.key].metadata[0].name
  chart     = local.chart_path

  # The community sub-charts stay disabled; the services are external.
  dependency_update = false
  atomic            = true
  cleanup_on_fail   = true
  wait              = true
  timeout           = var.helm_timeout_seconds
  max_history       = 10

  values = concat([yamlencode(local.region_values[each.key])], var.extra_values)

  depends_on = [kubernetes_secret_v1.services]
}
