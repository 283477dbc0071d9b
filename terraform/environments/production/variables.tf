variable "region" {
  description = "AWS region."
  type        = string
  default     = "eu-west-1"
}

variable "name" {
  description = "Prefix for every resource name."
  type        = string
  default     = "smsadmin-production"
}

variable "domain_name" {
  description = "Host name the site is served on (the ACM certificate must cover it). Point a DNS record at the alb_dns_name output."
  type        = string
}

variable "certificate_arn" {
  description = "ACM certificate ARN for domain_name, in this region."
  type        = string
}

variable "bucket_prefix" {
  description = "Globally unique S3 bucket prefix, e.g. example-org-smsadmin-production."
  type        = string
}

variable "image_tag" {
  description = "Tag of the image in the ECR repository to run (tags are immutable)."
  type        = string
}

variable "vpc_cidr_block" {
  type    = string
  default = "10.40.0.0/16"
}

variable "single_nat_gateway" {
  type    = bool
  default = false
}

variable "db_instance_class" {
  type    = string
  default = "db.t4g.medium"
}

variable "db_multi_az" {
  type    = bool
  default = true
}

variable "db_iam_auth" {
  type    = bool
  default = false
}

variable "db_backup_retention_days" {
  type    = number
  default = 14
}

variable "redis_node_type" {
  type    = string
  default = "cache.t4g.small"
}

variable "web_min_count" {
  type    = number
  default = 2
}

variable "web_max_count" {
  type    = number
  default = 6
}

variable "worker_min_count" {
  type    = number
  default = 1
}

variable "worker_max_count" {
  type    = number
  default = 8
}

variable "cpu_architecture" {
  description = "X86_64 or ARM64; must match the image."
  type        = string
  default     = "X86_64"
}

variable "app_environment" {
  description = "Extra non-secret environment variables for the containers (TIME_ZONE, SMS_SENDERS, ...)."
  type        = map(string)
  default     = {}
}

variable "log_retention_days" {
  type    = number
  default = 365
}

variable "archive_glacier_transition_days" {
  type    = number
  default = 90
}

variable "archive_expiration_days" {
  description = "0 keeps archive objects forever."
  type        = number
  default     = 2555
}

variable "alarm_emails" {
  type    = list(string)
  default = []
}
