"""The local stack: DynamoDB Local plus template.yaml's HTTP API served on 127.0.0.1, no Docker."""
