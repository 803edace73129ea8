#!/usr/bin/env bash
# The secrets cluster.yaml and cluster-onprem.yaml copy to every node (file_mounts), written once
# on your machine, readable by you only; rerunning keeps what exists.
#   ~/.ray/auth_token                 Ray's token (`ray get-auth-token --generate`): every node
#                                     starts Ray with RAY_AUTH_MODE=token and this token, and your
#                                     own `ray dashboard` / `ray job submit` need it too.
#   ~/.courselab/mlflow-credentials   the MLflow user and password: the head starts the MLflow
#                                     server's basic-auth app with them (deploy/mlflow-server.sh);
#                                     on every node they are ~/.mlflow/credentials, which the MLflow
#                                     client reads (the stages on the head, rank 0 on the workers).
# Ray's guide for this: https://docs.ray.io/en/latest/ray-security/token-auth.html ("Ray clusters
# on remote virtual machines"). Never commit either file.
set -euo pipefail
umask 077

ray get-auth-token --generate >/dev/null
chmod 600 ~/.ray/auth_token

creds=~/.courselab/mlflow-credentials
mkdir -p "$(dirname "$creds")"
if [[ ! -s $creds ]]; then
  password=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')
  printf '[mlflow]\nmlflow_tracking_username = courselab\nmlflow_tracking_password = %s\n' "$password" > "$creds"
fi
chmod 600 "$creds"
echo "Ray token: ~/.ray/auth_token; MLflow credentials: $creds"
