output "namespaces" {
  description = "The namespace of each region's release."
  value       = local.namespaces
}

output "releases" {
  description = "Helm release name, chart version and status per region."
  value = {
    for r, rel in helm_release.floodgate : r => {
      name      = rel.name
      namespace = rel.namespace
      version   = rel.version
      status    = rel.status
    }
  }
}

output "gateway_urls" {
  description = "In-cluster URL of each region's OpenAI-compatible API (the gateway Service)."
  value       = { for r, ns in local.namespaces : r => "http://${var.release_name}-gateway.${ns}.svc:8080" }
}

output "worker_urls" {
  description = "In-cluster URL of each region's worker Service (an upstream endpoint for gateways)."
  value       = local.worker_urls
}
