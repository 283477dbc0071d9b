# One EC2 instance running the compose deployment (deploy/compose.yaml) with Docker.
# Only 80/443 are open to the world; administration is through SSM Session Manager
# (no SSH key, no port 22) unless admin_cidr_blocks is set.

provider "aws" {
  region = var.region

  default_tags {
    tags = {
      Application = "smsadmin"
      Environment = "single-host"
      ManagedBy   = "terraform"
    }
  }
}

data "aws_caller_identity" "current" {}

data "aws_vpc" "default" {
  count   = var.vpc_id == null ? 1 : 0
  default = true
}

locals {
  vpc_id = var.vpc_id == null ? data.aws_vpc.default[0].id : var.vpc_id
}

data "aws_subnets" "vpc" {
  filter {
    name   = "vpc-id"
    values = [local.vpc_id]
  }
}

locals {
  subnet_id = var.subnet_id == null ? sort(data.aws_subnets.vpc.ids)[0] : var.subnet_id
}

data "aws_ami" "debian" {
  most_recent = true
  owners      = ["136693071363"] # Debian

  filter {
    name   = "name"
    values = ["debian-12-${var.architecture}-*"]
  }
  filter {
    name   = "virtualization-type"
    values = ["hvm"]
  }
}

# --- Security group -------------------------------------------------------------------

# All rules are separate resources (never mixed with inline rules, which would fight).
resource "aws_security_group" "host" {
  name        = "${var.name}-host"
  description = "SMS Admin single host: HTTP/HTTPS only; SSH only from admin_cidr_blocks"
  vpc_id      = local.vpc_id
}

locals {
  public_ingress = {
    http_v4  = { port = 80, cidr_ipv4 = "0.0.0.0/0", cidr_ipv6 = null, description = "HTTP (redirect to HTTPS, ACME)" }
    http_v6  = { port = 80, cidr_ipv4 = null, cidr_ipv6 = "::/0", description = "HTTP (redirect to HTTPS, ACME)" }
    https_v4 = { port = 443, cidr_ipv4 = "0.0.0.0/0", cidr_ipv6 = null, description = "HTTPS" }
    https_v6 = { port = 443, cidr_ipv4 = null, cidr_ipv6 = "::/0", description = "HTTPS" }
  }
  egress = {
    https_v4 = { port = 443, cidr_ipv4 = "0.0.0.0/0", cidr_ipv6 = null, description = "HTTPS out: images, SSM, Twilio, OpenAI" }
    https_v6 = { port = 443, cidr_ipv4 = null, cidr_ipv6 = "::/0", description = "HTTPS out: images, SSM, Twilio, OpenAI" }
    http_v4  = { port = 80, cidr_ipv4 = "0.0.0.0/0", cidr_ipv6 = null, description = "HTTP out: Debian package mirrors" }
    http_v6  = { port = 80, cidr_ipv4 = null, cidr_ipv6 = "::/0", description = "HTTP out: Debian package mirrors" }
  }
}

resource "aws_vpc_security_group_ingress_rule" "public" {
  #checkov:skip=CKV_AWS_260:Port 80 must be public for the HTTP->HTTPS redirect and ACME HTTP-01 certificate challenges.
  for_each = local.public_ingress

  security_group_id = aws_security_group.host.id
  description       = each.value.description
  ip_protocol       = "tcp"
  from_port         = each.value.port
  to_port           = each.value.port
  cidr_ipv4         = each.value.cidr_ipv4
  cidr_ipv6         = each.value.cidr_ipv6
}

# SSH exists only when admin_cidr_blocks is non-empty (default: empty), one rule per CIDR.
resource "aws_vpc_security_group_ingress_rule" "ssh_admin" {
  for_each = toset(var.admin_cidr_blocks)

  security_group_id = aws_security_group.host.id
  description       = "SSH from an administrator network"
  ip_protocol       = "tcp"
  from_port         = 22
  to_port           = 22
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_egress_rule" "out" {
  for_each = local.egress

  security_group_id = aws_security_group.host.id
  description       = each.value.description
  ip_protocol       = "tcp"
  from_port         = each.value.port
  to_port           = each.value.port
  cidr_ipv4         = each.value.cidr_ipv4
  cidr_ipv6         = each.value.cidr_ipv6
}

# --- IAM: SSM Session Manager and read access to the host's parameters -----------------

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "host" {
  name_prefix        = "${var.name}-"
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

resource "aws_iam_role_policy_attachment" "ssm_core" {
  role       = aws_iam_role.host.name
  policy_arn = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
}

data "aws_iam_policy_document" "parameters" {
  statement {
    actions   = ["ssm:GetParametersByPath"]
    resources = ["arn:aws:ssm:${var.region}:${data.aws_caller_identity.current.account_id}:parameter${var.ssm_parameter_prefix}"]
  }
  statement {
    actions   = ["ssm:GetParameters", "ssm:GetParameter"]
    resources = ["arn:aws:ssm:${var.region}:${data.aws_caller_identity.current.account_id}:parameter${var.ssm_parameter_prefix}/*"]
  }
}

resource "aws_iam_role_policy" "parameters" {
  name   = "read-app-parameters"
  role   = aws_iam_role.host.id
  policy = data.aws_iam_policy_document.parameters.json
}

resource "aws_iam_instance_profile" "host" {
  name_prefix = "${var.name}-"
  role        = aws_iam_role.host.name
}

# --- Network interface + Elastic IP (public address exists before cloud-init runs) -----

resource "aws_network_interface" "host" {
  subnet_id       = local.subnet_id
  security_groups = [aws_security_group.host.id]
  description     = "${var.name} primary interface"
}

resource "aws_eip" "host" {
  domain            = "vpc"
  network_interface = aws_network_interface.host.id
  tags              = { Name = var.name }
}

# --- Instance -------------------------------------------------------------------------

resource "aws_instance" "host" {
  ami                  = data.aws_ami.debian.id
  instance_type        = var.instance_type
  iam_instance_profile = aws_iam_instance_profile.host.name
  monitoring           = true
  ebs_optimized        = true

  network_interface {
    network_interface_id = aws_network_interface.host.id
    device_index         = 0
  }

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
    instance_metadata_tags      = "disabled"
  }

  root_block_device {
    volume_type           = "gp3"
    volume_size           = var.root_volume_size_gb
    encrypted             = true
    delete_on_termination = true
  }

  user_data_replace_on_change = true
  user_data = templatefile("${path.module}/cloud-init.yaml.tftpl", {
    region           = var.region
    deploy_repo_url  = var.deploy_repo_url
    deploy_repo_ref  = var.deploy_repo_ref
    compose_file     = var.compose_file
    env_file         = var.env_file
    parameter_prefix = var.ssm_parameter_prefix
  })

  tags = { Name = var.name }

  depends_on = [aws_eip.host]
}
