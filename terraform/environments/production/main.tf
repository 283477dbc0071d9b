provider "aws" {
  region = var.region

  default_tags {
    tags = {
      Application = "smsadmin"
      Environment = "production"
      ManagedBy   = "terraform"
    }
  }
}

data "aws_caller_identity" "current" {}

locals {
  account_id   = data.aws_caller_identity.current.account_id
  param_prefix = "/smsadmin/production"
}

# --- One customer-managed key for logs, RDS, Redis, S3, ECR and SNS ----------------------
# (SSM parameters get their own key in modules/secrets.)

data "aws_iam_policy_document" "kms" {
  #checkov:skip=CKV_AWS_109:KMS key policy: "*" means this key only; account-root administration is the AWS default key policy and lets IAM policies delegate use.
  #checkov:skip=CKV_AWS_111:KMS key policy: "*" means this key only; service statements are limited by encryption-context or source-account conditions.
  #checkov:skip=CKV_AWS_356:KMS key policy: a key policy's resource is always the key itself, written "*".
  statement {
    sid       = "AccountAdministration"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:aws:iam::${local.account_id}:root"]
    }
  }

  statement {
    sid = "CloudWatchLogs"
    actions = [
      "kms:Encrypt*",
      "kms:Decrypt*",
      "kms:ReEncrypt*",
      "kms:GenerateDataKey*",
      "kms:Describe*",
    ]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${var.region}.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:aws:logs:${var.region}:${local.account_id}:log-group:*"]
    }
  }

  statement {
    sid       = "CloudWatchAlarmsToSns"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_kms_key" "main" {
  description             = "${var.name} data at rest"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
}

resource "aws_kms_alias" "main" {
  name          = "alias/${var.name}"
  target_key_id = aws_kms_key.main.key_id
}

# --- Modules --------------------------------------------------------------------------

module "network" {
  source = "../../modules/network"

  name               = var.name
  cidr_block         = var.vpc_cidr_block
  single_nat_gateway = var.single_nat_gateway
  kms_key_arn        = aws_kms_key.main.arn
  log_retention_days = var.log_retention_days
}

module "secrets" {
  source = "../../modules/secrets"

  name   = var.name
  prefix = local.param_prefix
}

module "storage" {
  source = "../../modules/storage"

  bucket_prefix           = var.bucket_prefix
  kms_key_arn             = aws_kms_key.main.arn
  glacier_transition_days = var.archive_glacier_transition_days
  expiration_days         = var.archive_expiration_days
  log_retention_days      = var.log_retention_days
}

module "ecr" {
  source = "../../modules/ecr"

  name        = "smsadmin"
  kms_key_arn = aws_kms_key.main.arn
}

module "alb" {
  source = "../../modules/alb"

  name               = var.name
  vpc_id             = module.network.vpc_id
  vpc_cidr_block     = module.network.vpc_cidr_block
  public_subnet_ids  = module.network.public_subnet_ids
  certificate_arn    = var.certificate_arn
  access_logs_bucket = module.storage.logs_bucket_name
  access_logs_prefix = module.storage.alb_log_prefix
}

module "ecs" {
  source = "../../modules/ecs"

  name                       = var.name
  vpc_id                     = module.network.vpc_id
  private_subnet_ids         = module.network.private_subnet_ids
  private_subnet_cidr_blocks = module.network.private_subnet_cidr_blocks
  alb_security_group_id      = module.alb.security_group_id
  target_group_arn           = module.alb.target_group_arn
  image                      = "${module.ecr.repository_url}:${var.image_tag}"
  ecr_repository_arn         = module.ecr.repository_arn
  cpu_architecture           = var.cpu_architecture
  kms_key_arn                = aws_kms_key.main.arn
  secret_arns                = module.secrets.parameter_arns
  secrets_kms_key_arn        = module.secrets.kms_key_arn
  archive_bucket_name        = module.storage.archive_bucket_name
  archive_bucket_arn         = module.storage.archive_bucket_arn
  archive_kms_key_arn        = aws_kms_key.main.arn
  log_retention_days         = var.log_retention_days
  web_min_count              = var.web_min_count
  web_max_count              = var.web_max_count
  worker_min_count           = var.worker_min_count
  worker_max_count           = var.worker_max_count

  environment = merge(
    {
      ALLOWED_HOSTS        = var.domain_name
      CSRF_TRUSTED_ORIGINS = "https://${var.domain_name}"
      PUBLIC_BASE_URL      = "https://${var.domain_name}"
    },
    var.app_environment,
  )

  # The target group must be attached to a listener before a service can use it.
  depends_on = [module.alb]
}

module "database" {
  source = "../../modules/database"

  name                                = var.name
  vpc_id                              = module.network.vpc_id
  subnet_ids                          = module.network.private_subnet_ids
  allowed_security_group_ids          = [module.ecs.tasks_security_group_id]
  kms_key_arn                         = aws_kms_key.main.arn
  instance_class                      = var.db_instance_class
  multi_az                            = var.db_multi_az
  iam_database_authentication_enabled = var.db_iam_auth
  backup_retention_days               = var.db_backup_retention_days
}

module "cache" {
  source = "../../modules/cache"

  name                          = var.name
  vpc_id                        = module.network.vpc_id
  subnet_ids                    = module.network.private_subnet_ids
  allowed_security_group_ids    = [module.ecs.tasks_security_group_id]
  kms_key_arn                   = aws_kms_key.main.arn
  auth_token_ssm_parameter_name = module.secrets.redis_auth_token_parameter_name
  node_type                     = var.redis_node_type
  log_retention_days            = var.log_retention_days
}

module "logs_alarms" {
  source = "../../modules/logs_alarms"

  name                    = var.name
  kms_key_arn             = aws_kms_key.main.arn
  alarm_emails            = var.alarm_emails
  alb_arn_suffix          = module.alb.arn_suffix
  target_group_arn_suffix = module.alb.target_group_arn_suffix
  db_instance_identifier  = module.database.instance_identifier
  ecs_cluster_name        = module.ecs.cluster_name
  ecs_service_names       = values(module.ecs.service_names)
}
