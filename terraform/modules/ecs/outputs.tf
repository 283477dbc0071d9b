output "cluster_name" {
  value = aws_ecs_cluster.this.name
}

output "cluster_arn" {
  value = aws_ecs_cluster.this.arn
}

output "tasks_security_group_id" {
  value = aws_security_group.tasks.id
}

output "service_names" {
  value = {
    web    = aws_ecs_service.web.name
    worker = aws_ecs_service.worker.name
    beat   = aws_ecs_service.beat.name
  }
}

output "task_definition_families" {
  value = { for k, td in aws_ecs_task_definition.this : k => td.family }
}

output "web_task_definition_arn" {
  value = aws_ecs_task_definition.this["web"].arn
}

output "task_role_arn" {
  value = aws_iam_role.task.arn
}

output "execution_role_arn" {
  value = aws_iam_role.execution.arn
}
