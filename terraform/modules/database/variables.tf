variable "name" {
  type = string
}

variable "vpc_id" {
  type = string
}

variable "subnet_ids" {
  description = "Private subnets (two AZs) for the DB subnet group."
  type        = list(string)
}

variable "allowed_security_group_ids" {
  description = "Security groups allowed to connect on 5432: the ECS tasks' group only."
  type        = list(string)
}

variable "kms_key_arn" {
  description = "KMS key for storage, Performance Insights and the master-password secret."
  type        = string
}

variable "engine_version" {
  type    = string
  default = "16.4"
}

variable "instance_class" {
  type    = string
  default = "db.t4g.medium"
}

variable "allocated_storage_gb" {
  type    = number
  default = 50
}

variable "max_allocated_storage_gb" {
  description = "Storage autoscaling ceiling."
  type        = number
  default     = 200
}

variable "database_name" {
  type    = string
  default = "smsadmin"
}

variable "master_username" {
  type    = string
  default = "smsadmin"
}

variable "multi_az" {
  description = "Standby replica in a second AZ."
  type        = bool
  default     = true
}

variable "iam_database_authentication_enabled" {
  description = "Allow IAM database authentication in addition to passwords."
  type        = bool
  default     = false
}

variable "backup_retention_days" {
  description = "Automated backup retention, 7 to 35 days."
  type        = number
  default     = 14

  validation {
    condition     = var.backup_retention_days >= 7 && var.backup_retention_days <= 35
    error_message = "Keep automated backups for 7 to 35 days."
  }
}

variable "log_min_duration_statement_ms" {
  description = "Log statements slower than this (ms)."
  type        = number
  default     = 1000
}
