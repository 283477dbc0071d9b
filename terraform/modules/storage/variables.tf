variable "bucket_prefix" {
  description = "Globally unique bucket name prefix; buckets are <prefix>-archive and <prefix>-logs."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key for the archive bucket's default encryption."
  type        = string
}

variable "glacier_transition_days" {
  description = "Days after which archive objects move to Glacier."
  type        = number
  default     = 90
}

variable "glacier_storage_class" {
  description = "GLACIER_IR (instant retrieval), GLACIER (flexible) or DEEP_ARCHIVE."
  type        = string
  default     = "GLACIER"
}

variable "expiration_days" {
  description = "Days after which archive objects are deleted; 0 keeps them forever."
  type        = number
  default     = 2555 # about 7 years
}

variable "noncurrent_version_expiration_days" {
  description = "Days an overwritten or deleted archive version is kept."
  type        = number
  default     = 30
}

variable "archive_object_ownership" {
  description = "BucketOwnerEnforced disables ACLs. The app's django-storages config sends default_acl=private; switch to BucketOwnerPreferred if S3 rejects those uploads with AccessControlListNotSupported."
  type        = string
  default     = "BucketOwnerEnforced"
}

variable "log_retention_days" {
  description = "Days S3 and ALB access logs are kept."
  type        = number
  default     = 365
}
