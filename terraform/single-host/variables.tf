variable "region" {
  type    = string
  default = "eu-west-1"
}

variable "name" {
  type    = string
  default = "smsadmin-single-host"
}

variable "instance_type" {
  type    = string
  default = "t3.small"
}

variable "architecture" {
  description = "amd64 or arm64 (pick a matching instance_type, e.g. t4g.small for arm64)."
  type        = string
  default     = "amd64"
}

variable "root_volume_size_gb" {
  type    = number
  default = 30
}

variable "vpc_id" {
  description = "VPC to use; null uses the account's default VPC."
  type        = string
  default     = null
}

variable "subnet_id" {
  description = "Public subnet for the instance; null picks one of the VPC's subnets."
  type        = string
  default     = null
}

variable "admin_cidr_blocks" {
  description = "CIDRs allowed to SSH (22). Empty by default: use SSM Session Manager instead."
  type        = list(string)
  default     = []

  validation {
    condition     = !contains(var.admin_cidr_blocks, "0.0.0.0/0")
    error_message = "Do not open SSH to the whole internet; use SSM Session Manager or a narrow CIDR."
  }
}

variable "deploy_repo_url" {
  description = "Git URL of the SMS Admin repository holding deploy/compose.yaml."
  type        = string
}

variable "deploy_repo_ref" {
  description = "Branch or tag to check out."
  type        = string
  default     = "main"
}

variable "compose_file" {
  description = "Compose file path inside the repository."
  type        = string
  default     = "deploy/compose.yaml"
}

variable "env_file" {
  description = "Path (inside the repository checkout) where the env file built from SSM is written for compose."
  type        = string
  default     = "deploy/.env"
}

variable "ssm_parameter_prefix" {
  description = "SSM path whose SecureString parameters (NAME=value) become the compose env file."
  type        = string
  default     = "/smsadmin/single-host"
}
