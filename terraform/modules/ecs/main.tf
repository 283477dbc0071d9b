# ECS on Fargate: one cluster, one image, three services that differ by command.
#   web    - behind the ALB, autoscaled on average CPU (target tracking)
#   worker - Celery workers, autoscaled by step scaling on a queue-depth CloudWatch
#            metric (see "Worker autoscaling" below)
#   beat   - exactly one Celery beat; deployments stop the old task before starting the
#            new one (max 100 % / min 0 %) so two schedulers never run at once
# Secrets come from SSM Parameter Store through the container definitions' `secrets`.

data "aws_region" "current" {}

locals {
  services = {
    web = {
      command = var.web_command
      cpu     = var.web_cpu
      memory  = var.web_memory
      port    = var.web_port
    }
    worker = {
      command = var.worker_command
      cpu     = var.worker_cpu
      memory  = var.worker_memory
      port    = null
    }
    beat = {
      command = var.beat_command
      cpu     = var.beat_cpu
      memory  = var.beat_memory
      port    = null
    }
  }

  environment = merge(
    {
      DJANGO_ENV          = "production"
      ARCHIVE_S3_BUCKET   = var.archive_bucket_name
      ARCHIVE_S3_REGION   = data.aws_region.current.name
      TRUSTED_PROXY_COUNT = "1"
      # The workers scale on this metric, which beat has a worker publish every minute.
      QUEUE_DEPTH_METRIC_NAMESPACE = var.queue_metric_namespace
      QUEUE_DEPTH_METRIC_NAME      = var.queue_metric_name
      # The root filesystem is read-only; only /tmp is writable (task-local storage).
      MEDIA_ROOT = "/tmp/media"
    },
    var.environment,
  )

  secrets = [for env_name, arn in var.secret_arns : { name = env_name, valueFrom = arn }]

  log_group_arns = [for lg in aws_cloudwatch_log_group.service : "${lg.arn}:*"]
}

# --- Logs -----------------------------------------------------------------------------

resource "aws_cloudwatch_log_group" "service" {
  for_each = local.services

  name              = "/${var.name}/ecs/${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_cloudwatch_log_group" "exec" {
  name              = "/${var.name}/ecs/exec"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

# --- Cluster --------------------------------------------------------------------------

resource "aws_ecs_cluster" "this" {
  name = var.name

  setting {
    name  = "containerInsights"
    value = "enabled"
  }

  configuration {
    execute_command_configuration {
      kms_key_id = var.kms_key_arn
      logging    = "OVERRIDE"

      log_configuration {
        cloud_watch_encryption_enabled = true
        cloud_watch_log_group_name     = aws_cloudwatch_log_group.exec.name
      }
    }
  }
}

# --- Networking -----------------------------------------------------------------------

resource "aws_security_group" "tasks" {
  name        = "${var.name}-tasks"
  description = "SMS Admin ECS tasks"
  vpc_id      = var.vpc_id

  ingress {
    description     = "Web port from the load balancer only"
    from_port       = var.web_port
    to_port         = var.web_port
    protocol        = "tcp"
    security_groups = [var.alb_security_group_id]
  }

  egress {
    description = "HTTPS: Twilio, OpenAI and AWS APIs (ECR, SSM, S3, CloudWatch) via NAT"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }

  egress {
    description = "PostgreSQL in the private subnets"
    from_port   = 5432
    to_port     = 5432
    protocol    = "tcp"
    cidr_blocks = var.private_subnet_cidr_blocks
  }

  egress {
    description = "Redis in the private subnets"
    from_port   = 6379
    to_port     = 6379
    protocol    = "tcp"
    cidr_blocks = var.private_subnet_cidr_blocks
  }
}

# --- IAM: execution role (pull image, write logs, read the named secrets) --------------

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "execution" {
  name_prefix        = "${var.name}-exec-"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid       = "EcrAuth"
    actions   = ["ecr:GetAuthorizationToken"] # not resource-scoped by AWS
    resources = ["*"]
  }

  statement {
    sid = "EcrPull"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:GetDownloadUrlForLayer",
      "ecr:BatchGetImage",
    ]
    resources = [var.ecr_repository_arn]
  }

  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = local.log_group_arns
  }

  statement {
    sid       = "ReadNamedSecrets"
    actions   = ["ssm:GetParameters"]
    resources = values(var.secret_arns)
  }

  statement {
    sid       = "DecryptSecrets"
    actions   = ["kms:Decrypt"]
    resources = [var.secrets_kms_key_arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["ssm.${data.aws_region.current.name}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "pull-log-secrets"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

# --- IAM: task role (what the app itself may do) ---------------------------------------

resource "aws_iam_role" "task" {
  name_prefix        = "${var.name}-task-"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "task" {
  statement {
    sid       = "ArchiveList"
    actions   = ["s3:ListBucket"]
    resources = [var.archive_bucket_arn]
  }

  statement {
    sid = "ArchiveWrite"
    actions = [
      "s3:PutObject",
      "s3:GetObject",
      "s3:AbortMultipartUpload",
      "s3:ListMultipartUploadParts",
    ]
    resources = ["${var.archive_bucket_arn}/*"]
  }

  statement {
    sid       = "ArchiveKms"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [var.archive_kms_key_arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${data.aws_region.current.name}.amazonaws.com"]
    }
  }

  statement {
    sid       = "PublishQueueDepth"
    actions   = ["cloudwatch:PutMetricData"] # not resource-scoped; limited to one namespace
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "cloudwatch:namespace"
      values   = [var.queue_metric_namespace]
    }
  }
}

resource "aws_iam_role_policy" "task" {
  name   = "archive-and-metrics"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.task.json
}

# --- Task definitions -----------------------------------------------------------------

resource "aws_ecs_task_definition" "this" {
  for_each = local.services

  family                   = "${var.name}-${each.key}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = each.value.cpu
  memory                   = each.value.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  volume {
    name = "tmp"
  }

  container_definitions = jsonencode([
    {
      name                   = each.key
      image                  = var.image
      command                = each.value.command
      essential              = true
      readonlyRootFilesystem = true
      privileged             = false
      user                   = var.container_user
      linuxParameters        = { initProcessEnabled = true }
      stopTimeout            = each.key == "worker" ? 120 : 30

      portMappings = each.value.port == null ? [] : [
        { containerPort = each.value.port, protocol = "tcp" }
      ]

      mountPoints = [{ sourceVolume = "tmp", containerPath = "/tmp", readOnly = false }]

      environment = [for k in sort(keys(local.environment)) : { name = k, value = local.environment[k] }]
      secrets     = local.secrets

      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.service[each.key].name
          awslogs-region        = data.aws_region.current.name
          awslogs-stream-prefix = each.key
        }
      }
    }
  ])
}

# --- Services -------------------------------------------------------------------------

resource "aws_ecs_service" "web" {
  name                              = "web"
  cluster                           = aws_ecs_cluster.this.id
  task_definition                   = aws_ecs_task_definition.this["web"].arn
  desired_count                     = var.web_min_count
  launch_type                       = "FARGATE"
  platform_version                  = "LATEST"
  health_check_grace_period_seconds = 60
  propagate_tags                    = "SERVICE"

  deployment_maximum_percent         = 200
  deployment_minimum_healthy_percent = 100

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = var.target_group_arn
    container_name   = "web"
    container_port   = var.web_port
  }

  lifecycle {
    # desired_count is autoscaling's; task_definition is the deploy workflow's (a new
    # image per commit), so an apply never rolls a service back to an older image.
    ignore_changes = [desired_count, task_definition]
  }
}

resource "aws_ecs_service" "worker" {
  name             = "worker"
  cluster          = aws_ecs_cluster.this.id
  task_definition  = aws_ecs_task_definition.this["worker"].arn
  desired_count    = var.worker_min_count
  launch_type      = "FARGATE"
  platform_version = "LATEST"
  propagate_tags   = "SERVICE"

  deployment_maximum_percent         = 200
  deployment_minimum_healthy_percent = 100

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = false
  }

  lifecycle {
    # desired_count is autoscaling's; task_definition is the deploy workflow's (a new
    # image per commit), so an apply never rolls a service back to an older image.
    ignore_changes = [desired_count, task_definition]
  }
}

# Exactly one scheduler. A deployment stops the old beat (min 0 %) before the new one
# starts (max 100 %): a short gap in scheduling, never two schedulers double-sending.
resource "aws_ecs_service" "beat" {
  name             = "beat"
  cluster          = aws_ecs_cluster.this.id
  task_definition  = aws_ecs_task_definition.this["beat"].arn
  desired_count    = 1
  launch_type      = "FARGATE"
  platform_version = "LATEST"
  propagate_tags   = "SERVICE"

  deployment_maximum_percent         = 100
  deployment_minimum_healthy_percent = 0

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = false
  }

  lifecycle {
    ignore_changes = [task_definition] # the deploy workflow's, as for web and worker
  }
}

# --- Web autoscaling: CPU target tracking ---------------------------------------------

resource "aws_appautoscaling_target" "web" {
  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.this.name}/${aws_ecs_service.web.name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.web_min_count
  max_capacity       = var.web_max_count
}

resource "aws_appautoscaling_policy" "web_cpu" {
  name               = "${var.name}-web-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.web.service_namespace
  resource_id        = aws_appautoscaling_target.web.resource_id
  scalable_dimension = aws_appautoscaling_target.web.scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.web_cpu_target_percent
    scale_in_cooldown  = 300
    scale_out_cooldown = 60

    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}

# --- Worker autoscaling: step scaling on queue depth ----------------------------------
# Metric: <queue_metric_namespace>/<queue_metric_name> with dimension Queue=<queue name>,
# the number of messages waiting in the Celery queue (Redis LLEN of the queue key). It is
# a CUSTOM metric that something must publish every minute (the task role may
# cloudwatch:PutMetricData to this namespace only; e.g. a beat-scheduled task calling
# PutMetricData). Until it is published the alarms sit in INSUFFICIENT_DATA and the
# workers stay at worker_min_count.

resource "aws_appautoscaling_target" "worker" {
  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.this.name}/${aws_ecs_service.worker.name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.worker_min_count
  max_capacity       = var.worker_max_count
}

resource "aws_appautoscaling_policy" "worker_out" {
  name               = "${var.name}-worker-queue-out"
  policy_type        = "StepScaling"
  service_namespace  = aws_appautoscaling_target.worker.service_namespace
  resource_id        = aws_appautoscaling_target.worker.resource_id
  scalable_dimension = aws_appautoscaling_target.worker.scalable_dimension

  step_scaling_policy_configuration {
    adjustment_type         = "ChangeInCapacity"
    cooldown                = 120
    metric_aggregation_type = "Maximum"

    step_adjustment {
      metric_interval_lower_bound = 0
      metric_interval_upper_bound = var.queue_depth_scale_out_threshold * 4
      scaling_adjustment          = 1
    }
    step_adjustment {
      metric_interval_lower_bound = var.queue_depth_scale_out_threshold * 4
      scaling_adjustment          = 3
    }
  }
}

resource "aws_appautoscaling_policy" "worker_in" {
  name               = "${var.name}-worker-queue-in"
  policy_type        = "StepScaling"
  service_namespace  = aws_appautoscaling_target.worker.service_namespace
  resource_id        = aws_appautoscaling_target.worker.resource_id
  scalable_dimension = aws_appautoscaling_target.worker.scalable_dimension

  step_scaling_policy_configuration {
    adjustment_type         = "ChangeInCapacity"
    cooldown                = 300
    metric_aggregation_type = "Maximum"

    step_adjustment {
      metric_interval_upper_bound = 0
      scaling_adjustment          = -1
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "queue_high" {
  alarm_name          = "${var.name}-celery-queue-high"
  alarm_description   = "Celery queue backlog: add workers"
  namespace           = var.queue_metric_namespace
  metric_name         = var.queue_metric_name
  dimensions          = { Queue = var.celery_queue_name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 2
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = var.queue_depth_scale_out_threshold
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_appautoscaling_policy.worker_out.arn]
}

resource "aws_cloudwatch_metric_alarm" "queue_low" {
  alarm_name          = "${var.name}-celery-queue-low"
  alarm_description   = "Celery queue drained: remove workers"
  namespace           = var.queue_metric_namespace
  metric_name         = var.queue_metric_name
  dimensions          = { Queue = var.celery_queue_name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 10
  comparison_operator = "LessThanOrEqualToThreshold"
  threshold           = var.queue_depth_scale_in_threshold
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_appautoscaling_policy.worker_in.arn]
}
