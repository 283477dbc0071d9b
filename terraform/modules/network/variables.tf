variable "name" {
  description = "Prefix for resource names, e.g. smsadmin-production."
  type        = string
}

variable "cidr_block" {
  description = "VPC CIDR. Public subnets take the first two /20s (of a /16), private ones /20s 8 and 9."
  type        = string
  default     = "10.40.0.0/16"
}

variable "single_nat_gateway" {
  description = "One NAT gateway for both AZs (cheaper; an AZ outage cuts private egress) instead of one per AZ."
  type        = bool
  default     = false
}

variable "kms_key_arn" {
  description = "KMS key encrypting the flow-log log group."
  type        = string
}

variable "log_retention_days" {
  description = "Flow-log retention."
  type        = number
  default     = 365
}
