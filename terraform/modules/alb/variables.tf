variable "name" {
  type = string
}

variable "vpc_id" {
  type = string
}

variable "vpc_cidr_block" {
  type = string
}

variable "public_subnet_ids" {
  type = list(string)
}

variable "certificate_arn" {
  description = "ACM certificate for the site's host name (same region as the ALB)."
  type        = string
}

variable "target_port" {
  description = "Port the web container listens on."
  type        = number
  default     = 8000
}

variable "access_logs_bucket" {
  type = string
}

variable "access_logs_prefix" {
  type    = string
  default = "alb"
}

variable "ingress_cidr_blocks" {
  type    = list(string)
  default = ["0.0.0.0/0"]
}

variable "ingress_ipv6_cidr_blocks" {
  type    = list(string)
  default = ["::/0"]
}

variable "web_acl_arn" {
  description = "Optional WAFv2 web ACL to associate."
  type        = string
  default     = null
}
