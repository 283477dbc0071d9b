variable "name" {
  type = string
}

variable "vpc_id" {
  type = string
}

variable "subnet_ids" {
  description = "Private subnets for the cache subnet group."
  type        = list(string)
}

variable "allowed_security_group_ids" {
  description = "Security groups allowed on 6379: the ECS tasks' group only."
  type        = list(string)
}

variable "kms_key_arn" {
  type = string
}

variable "auth_token_ssm_parameter_name" {
  description = "SecureString parameter holding the Redis AUTH token (16-128 printable characters)."
  type        = string
}

variable "engine_version" {
  type    = string
  default = "7.1"
}

variable "node_type" {
  type    = string
  default = "cache.t4g.small"
}

variable "num_cache_clusters" {
  description = "Nodes in the group (primary + replicas across AZs); at least 2 for automatic failover."
  type        = number
  default     = 2

  validation {
    condition     = var.num_cache_clusters >= 2
    error_message = "Automatic failover and Multi-AZ need at least two nodes."
  }
}

variable "snapshot_retention_days" {
  type    = number
  default = 7
}

variable "log_retention_days" {
  type    = number
  default = 365
}
