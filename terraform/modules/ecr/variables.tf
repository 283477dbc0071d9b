variable "name" {
  description = "Repository name."
  type        = string
}

variable "kms_key_arn" {
  type = string
}

variable "keep_tagged_images" {
  description = "Tagged images kept (older ones expire); leave room to roll back."
  type        = number
  default     = 30
}

variable "untagged_expiry_days" {
  type    = number
  default = 7
}
