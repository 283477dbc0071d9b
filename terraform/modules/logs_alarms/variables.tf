variable "name" {
  type = string
}

variable "kms_key_arn" {
  description = "KMS key for the SNS topic; its policy must let cloudwatch.amazonaws.com use it."
  type        = string
}

variable "alarm_emails" {
  description = "Addresses subscribed to the alarm topic (each must confirm)."
  type        = list(string)
  default     = []
}

variable "alb_arn_suffix" {
  type = string
}

variable "target_group_arn_suffix" {
  type = string
}

variable "db_instance_identifier" {
  type = string
}

variable "ecs_cluster_name" {
  type = string
}

variable "ecs_service_names" {
  type    = list(string)
  default = ["web", "worker", "beat"]
}

variable "alb_5xx_rate_percent" {
  type    = number
  default = 5
}

variable "target_response_time_seconds" {
  type    = number
  default = 2
}

variable "rds_cpu_percent" {
  type    = number
  default = 80
}

variable "rds_free_storage_gb" {
  type    = number
  default = 10
}
