variable "chart_path" {
  description = "Path to the Floodgate Helm chart (deploy/helm/floodgate in this repository)."
  type        = string
  default     = null
}

variable "release_name" {
  description = "Helm release name; each region's release gets it in its own namespace."
  type        = string
  default     = "floodgate"
}

variable "namespace_prefix" {
  description = "Each region is installed into the namespace <prefix>-<region>."
  type        = string
  default     = "floodgate"
}

variable "image" {
  description = "Container image built from the repository's Dockerfile. digest (sha256:...) wins over tag when set; gateway_tag selects the gateway-only build for the gateways."
  type = object({
    repository  = string
    tag         = optional(string, "")
    digest      = optional(string, "")
    gateway_tag = optional(string, "")
  })
}

variable "regions" {
  description = <<-EOT
    One Floodgate release per region, each in its own namespace of the cluster the providers point at.
    Gateways prefer their own region's workers and fail over to the other regions' worker Services.
    For regions on separate clusters, call the module once per cluster (with provider aliases) and
    list the other clusters' worker URLs in remote_worker_endpoints.
  EOT
  type = map(object({
    gateway_min_replicas = optional(number, 2)
    gateway_max_replicas = optional(number, 10)
    worker_replicas      = optional(number, 1)
    worker_max_replicas  = optional(number, 4)
    gateway_resources = optional(object({
      cpu_request    = optional(string, "500m")
      memory_request = optional(string, "256Mi")
      cpu_limit      = optional(string, "2")
      memory_limit   = optional(string, "1Gi")
    }), {})
    worker_resources = optional(object({
      cpu_request    = optional(string, "2")
      memory_request = optional(string, "2Gi")
      cpu_limit      = optional(string, "4")
      memory_limit   = optional(string, "8Gi")
    }), {})
    analytics_enabled = optional(bool, true)
  }))

  validation {
    condition     = length(var.regions) > 0 && alltrue([for r in keys(var.regions) : can(regex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", r))])
    error_message = "Give at least one region; region names must be DNS labels (lower case, digits, '-')."
  }
}

variable "models" {
  description = "Models the workers serve (catalog names or names with a source in worker_toml): extra TOML lines for the worker and gateway [[model]] tables."
  type = list(object({
    name         = string
    worker_toml  = optional(string, "")
    gateway_toml = optional(string, "")
  }))
  default = [{ name = "smollm2-135m", worker_toml = "max_batch_size = 16\nkv_cache_tokens = 16384\n", gateway_toml = "retries = 2\n" }]
}

variable "worker_autoscaling" {
  description = "Worker autoscaling: none, hpa (Prometheus adapter metric) or keda (ScaledObject)."
  type        = string
  default     = "keda"

  validation {
    condition     = contains(["none", "hpa", "keda"], var.worker_autoscaling)
    error_message = "worker_autoscaling must be none, hpa or keda."
  }
}

variable "prometheus_url" {
  description = "Prometheus that KEDA queries for the worker queue depth."
  type        = string
  default     = "http://prometheus-operated.monitoring.svc:9090"
}

variable "service_monitor" {
  description = "Create a ServiceMonitor (needs the Prometheus Operator CRDs)."
  type        = bool
  default     = true
}

variable "service_urls" {
  description = "External services per region (keys of var.regions; a region without an entry uses the \"default\" one): PostgreSQL, Redis and NATS (JetStream) URLs. Stored in a Secret in each region's namespace."
  type = map(object({
    postgres_url = string
    redis_url    = string
    nats_url     = string
  }))
  sensitive = true
}

variable "worker_key" {
  description = "API key (fg-...) that gateways send to workers; create it with `floodgate keys create` against the shared PostgreSQL. Empty: workers accept requests without a key and only the NetworkPolicy protects them."
  type        = string
  default     = ""
  sensitive   = true
}

variable "remote_worker_endpoints" {
  description = "Workers in other clusters, added after the in-cluster regions to every gateway's endpoints."
  type = list(object({
    url    = string
    region = string
  }))
  default = []
}

variable "ingress_namespace" {
  description = "Namespace of the ingress controller allowed to reach the gateways."
  type        = string
  default     = "ingress-nginx"
}

variable "monitoring_namespace" {
  description = "Namespace allowed to scrape /metrics."
  type        = string
  default     = "monitoring"
}

variable "extra_values" {
  description = "More chart values (YAML documents), applied after the module's own."
  type        = list(string)
  default     = []
}

variable "helm_timeout_seconds" {
  description = "How long Helm waits for each release to become ready (workers download and load models first)."
  type        = number
  default     = 900
}
