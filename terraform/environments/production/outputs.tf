output "url" {
  description = "The site, once DNS for domain_name points at alb_dns_name."
  value       = "https://${var.domain_name}"
}

output "alb_dns_name" {
  description = "Create a CNAME (or Route 53 alias) for domain_name to this."
  value       = module.alb.dns_name
}

output "ecr_repository_url" {
  value = module.ecr.repository_url
}

output "ecs_cluster_name" {
  value = module.ecs.cluster_name
}

output "archive_bucket" {
  value = module.storage.archive_bucket_name
}

output "alarm_topic_arn" {
  value = module.logs_alarms.sns_topic_arn
}

output "database_endpoint" {
  value = module.database.endpoint
}

output "database_master_secret_arn" {
  description = "Secrets Manager secret with the RDS-generated master password (for DATABASE_URL)."
  value       = module.database.master_user_secret_arn
}

output "redis_primary_endpoint" {
  value = module.cache.primary_endpoint_address
}

output "ssm_parameter_names" {
  description = "Set each with: aws ssm put-parameter --overwrite --type SecureString --key-id <ssm_kms_alias> --name <name> --value ..."
  value       = module.secrets.parameter_names
}

output "ssm_kms_alias" {
  value = module.secrets.kms_alias
}

output "migrate_command" {
  description = "Run database migrations as a one-off task with the current web task definition."
  value = join(" ", [
    "aws ecs run-task",
    "--region ${var.region}",
    "--cluster ${module.ecs.cluster_name}",
    "--launch-type FARGATE",
    "--task-definition ${module.ecs.web_task_definition_arn}",
    "--network-configuration 'awsvpcConfiguration={subnets=[${join(",", module.network.private_subnet_ids)}],securityGroups=[${module.ecs.tasks_security_group_id}],assignPublicIp=DISABLED}'",
    "--overrides '{\"containerOverrides\":[{\"name\":\"web\",\"command\":[\"python\",\"manage.py\",\"migrate\",\"--noinput\"]}]}'",
  ])
}
