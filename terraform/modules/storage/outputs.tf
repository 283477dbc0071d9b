output "archive_bucket_name" {
  value = aws_s3_bucket.archive.id
}

output "archive_bucket_arn" {
  value = aws_s3_bucket.archive.arn
}

output "logs_bucket_name" {
  value = aws_s3_bucket.logs.id
}

output "alb_log_prefix" {
  value = "alb"
}
