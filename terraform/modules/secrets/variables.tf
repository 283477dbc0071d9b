variable "name" {
  type = string
}

variable "prefix" {
  description = "Parameter path prefix, e.g. /smsadmin/production."
  type        = string
}

variable "parameter_names" {
  description = "Environment variable names stored as SecureStrings and injected into the containers."
  type        = list(string)
  default = [
    "SECRET_KEY",
    "DATABASE_URL",
    "REDIS_URL",
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "OPENAI_API_KEY",
    "METRICS_TOKEN",
  ]
}
