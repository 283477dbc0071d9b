# Internet-facing Application Load Balancer: HTTPS (TLS 1.2/1.3) with an ACM
# certificate, HTTP redirected to HTTPS, invalid headers dropped, access logs to S3,
# deletion protection. Forwards to the web tasks on port 8000, health-checked on /health.

resource "aws_security_group" "alb" {
  #checkov:skip=CKV_AWS_260:Port 80 is open to the world only to answer with a 301 redirect to HTTPS; no request is forwarded over plain HTTP.
  name        = "${var.name}-alb"
  description = "Public HTTPS (and HTTP redirect) to the load balancer"
  vpc_id      = var.vpc_id

  ingress {
    description      = "HTTPS"
    from_port        = 443
    to_port          = 443
    protocol         = "tcp"
    cidr_blocks      = var.ingress_cidr_blocks
    ipv6_cidr_blocks = var.ingress_ipv6_cidr_blocks
  }

  ingress {
    description      = "HTTP, redirected to HTTPS"
    from_port        = 80
    to_port          = 80
    protocol         = "tcp"
    cidr_blocks      = var.ingress_cidr_blocks
    ipv6_cidr_blocks = var.ingress_ipv6_cidr_blocks
  }

  egress {
    description = "To the web tasks in the VPC"
    from_port   = var.target_port
    to_port     = var.target_port
    protocol    = "tcp"
    cidr_blocks = [var.vpc_cidr_block]
  }
}

resource "aws_lb" "this" {
  #checkov:skip=CKV2_AWS_76:No WAF web ACL is created here (see CKV2_AWS_28); the AWSManagedRulesKnownBadInputsRuleSet belongs in the web ACL passed as web_acl_arn. The app is Python, not Java/Log4j.
  #checkov:skip=CKV2_AWS_28:No WAF by default (cost, and the admin is behind a login with django-axes lockout); pass web_acl_arn to attach a WAFv2 web ACL.
  name                       = "${var.name}-alb"
  load_balancer_type         = "application"
  internal                   = false
  subnets                    = var.public_subnet_ids
  security_groups            = [aws_security_group.alb.id]
  drop_invalid_header_fields = true
  enable_deletion_protection = true
  idle_timeout               = 60

  access_logs {
    bucket  = var.access_logs_bucket
    prefix  = var.access_logs_prefix
    enabled = true
  }
}

resource "aws_wafv2_web_acl_association" "this" {
  count        = var.web_acl_arn == null ? 0 : 1
  resource_arn = aws_lb.this.arn
  web_acl_arn  = var.web_acl_arn
}

resource "aws_lb_target_group" "web" {
  #checkov:skip=CKV_AWS_378:TLS terminates at the load balancer; the hop to the task is inside the private VPC subnets and security-grouped to the ALB only.
  name                 = "${var.name}-web"
  port                 = var.target_port
  protocol             = "HTTP"
  target_type          = "ip"
  vpc_id               = var.vpc_id
  deregistration_delay = 30

  health_check {
    enabled             = true
    path                = "/health"
    protocol            = "HTTP"
    matcher             = "200"
    interval            = 15
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }
}

resource "aws_lb_listener" "https" {
  load_balancer_arn = aws_lb.this.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.web.arn
  }
}

resource "aws_lb_listener" "http" {
  load_balancer_arn = aws_lb.this.arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type = "redirect"
    redirect {
      port        = "443"
      protocol    = "HTTPS"
      status_code = "HTTP_301"
    }
  }
}
