# Remote state in S3 with DynamoDB locking. Values are supplied at init time so no
# account-specific names live in the code:
#
#   terraform init \
#     -backend-config="bucket=<state bucket>" \
#     -backend-config="key=smsadmin/production/terraform.tfstate" \
#     -backend-config="region=<region>" \
#     -backend-config="dynamodb_table=<lock table>" \
#     -backend-config="kms_key_id=<optional KMS key ARN for the state>"
#
# or put those lines in a backend.hcl and pass -backend-config=backend.hcl (deploy.sh
# does this when the file exists). The state holds the Redis AUTH token: keep the state
# bucket private, versioned and encrypted.
terraform {
  backend "s3" {
    encrypt = true
  }
}
