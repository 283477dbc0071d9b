output "kms_key_arn" {
  value = aws_kms_key.ssm.arn
}

output "kms_alias" {
  value = aws_kms_alias.ssm.name
}

output "parameter_arns" {
  description = "Environment variable name => parameter ARN."
  value       = { for k, p in aws_ssm_parameter.app : k => p.arn }
}

output "parameter_names" {
  description = "Environment variable name => parameter name."
  value       = { for k, p in aws_ssm_parameter.app : k => p.name }
}

output "redis_auth_token_parameter_name" {
  value = aws_ssm_parameter.redis_auth_token.name
}

output "redis_auth_token_parameter_arn" {
  value = aws_ssm_parameter.redis_auth_token.arn
}
