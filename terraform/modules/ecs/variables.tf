variable "name" {
  description = "Cluster name and resource prefix."
  type        = string
}

variable "vpc_id" {
  type = string
}

variable "private_subnet_ids" {
  type = list(string)
}

variable "private_subnet_cidr_blocks" {
  description = "Where PostgreSQL and Redis live (task egress on 5432/6379 is limited to these)."
  type        = list(string)
}

variable "alb_security_group_id" {
  type = string
}

variable "target_group_arn" {
  type = string
}

variable "image" {
  description = "Full image reference, e.g. <account>.dkr.ecr.<region>.amazonaws.com/smsadmin:1.2.3."
  type        = string
}

variable "ecr_repository_arn" {
  type = string
}

variable "kms_key_arn" {
  description = "KMS key for the log groups and ECS Exec sessions."
  type        = string
}

variable "secret_arns" {
  description = "Environment variable name => SSM parameter ARN, injected with `secrets`."
  type        = map(string)
}

variable "secrets_kms_key_arn" {
  description = "KMS key the SSM parameters are encrypted with."
  type        = string
}

variable "archive_bucket_name" {
  type = string
}

variable "archive_bucket_arn" {
  type = string
}

variable "archive_kms_key_arn" {
  type = string
}

variable "environment" {
  description = "Extra plain environment variables (ALLOWED_HOSTS, CSRF_TRUSTED_ORIGINS, PUBLIC_BASE_URL, ...)."
  type        = map(string)
  default     = {}
}

variable "log_retention_days" {
  type    = number
  default = 365
}

variable "cpu_architecture" {
  description = "X86_64 or ARM64; must match the image."
  type        = string
  default     = "X86_64"
}

variable "container_user" {
  description = "UID:GID the containers run as (non-root)."
  type        = string
  default     = "1000:1000"
}

variable "web_port" {
  type    = number
  default = 8000
}

variable "web_command" {
  type    = list(string)
  default = ["gunicorn", "smsadmin.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--worker-tmp-dir", "/tmp", "--access-logfile", "-"]
}

variable "worker_command" {
  type    = list(string)
  default = ["celery", "-A", "smsadmin", "worker", "--loglevel=INFO", "--concurrency=2"]
}

variable "beat_command" {
  type    = list(string)
  default = ["celery", "-A", "smsadmin", "beat", "--loglevel=INFO"]
}

variable "web_cpu" {
  type    = number
  default = 512
}

variable "web_memory" {
  type    = number
  default = 1024
}

variable "worker_cpu" {
  type    = number
  default = 512
}

variable "worker_memory" {
  type    = number
  default = 1024
}

variable "beat_cpu" {
  type    = number
  default = 256
}

variable "beat_memory" {
  type    = number
  default = 512
}

variable "web_min_count" {
  type    = number
  default = 2
}

variable "web_max_count" {
  type    = number
  default = 6
}

variable "web_cpu_target_percent" {
  type    = number
  default = 60
}

variable "worker_min_count" {
  type    = number
  default = 1
}

variable "worker_max_count" {
  type    = number
  default = 8
}

variable "celery_queue_name" {
  description = "CELERY_TASK_DEFAULT_QUEUE."
  type        = string
  default     = "smsadmin"
}

variable "queue_metric_namespace" {
  type    = string
  default = "SMSAdmin/Celery"
}

variable "queue_metric_name" {
  type    = string
  default = "QueueDepth"
}

variable "queue_depth_scale_out_threshold" {
  description = "Waiting messages at which a worker is added (four times this adds three)."
  type        = number
  default     = 100
}

variable "queue_depth_scale_in_threshold" {
  description = "Waiting messages at or below which (for 10 minutes) a worker is removed."
  type        = number
  default     = 5
}
