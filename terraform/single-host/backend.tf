# Remote state in S3 with DynamoDB locking; values via -backend-config (see
# ../environments/production/backend.tf), e.g. key=smsadmin/single-host/terraform.tfstate.
terraform {
  backend "s3" {
    encrypt = true
  }
}
