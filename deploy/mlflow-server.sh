#!/usr/bin/env bash
# Start the MLflow tracking server on a cluster-launcher head (cluster.yaml, cluster-onprem.yaml)
# unless it already answers. It listens on the head's private IP, never 0.0.0.0: the GPU workers
# log to it, nothing else needs it. MLflow's basic-auth app guards it; its admin user and password
# are the ones in ~/.mlflow/credentials (deploy/cluster-secrets.sh), which the MLflow client on
# every node also reads. State (runs, users, the CSRF key, the log) lives in ~/mlflow, mode 700.
set -euo pipefail
umask 077

ip=$(hostname -I | cut -d' ' -f1)
state="$HOME/mlflow"
mkdir -p "$state"
chmod 700 "$state"

if python -c "import sys, urllib.request as u; u.urlopen(f'http://{sys.argv[1]}:5000/health', timeout=2)" "$ip" 2>/dev/null; then
  exit 0
fi

if [[ ! -s ~/.mlflow/credentials ]]; then
  echo "mlflow-server.sh: ~/.mlflow/credentials is missing; run deploy/cluster-secrets.sh before ray up" >&2
  exit 1
fi
eval "$(python - <<'PY'
import configparser, os, shlex
config = configparser.ConfigParser()
config.read(os.path.expanduser("~/.mlflow/credentials"))
section = config["mlflow"]
print("export MLFLOW_AUTH_ADMIN_USERNAME=" + shlex.quote(section["mlflow_tracking_username"]))
print("export MLFLOW_AUTH_ADMIN_PASSWORD=" + shlex.quote(section["mlflow_tracking_password"]))
PY
)"
[[ -s $state/flask_secret_key ]] || python -c 'import secrets; print(secrets.token_hex(32))' > "$state/flask_secret_key"
MLFLOW_FLASK_SERVER_SECRET_KEY=$(cat "$state/flask_secret_key")
export MLFLOW_FLASK_SERVER_SECRET_KEY
# Users other than the admin get no access unless granted.
printf '[mlflow]\ndefault_permission = NO_PERMISSIONS\ndatabase_uri = sqlite:///%s/basic_auth.db\nadmin_username = %s\n' \
  "$state" "$MLFLOW_AUTH_ADMIN_USERNAME" > "$state/basic_auth.ini"
export MLFLOW_AUTH_CONFIG_PATH="$state/basic_auth.ini"

nohup setsid mlflow server --app-name basic-auth \
  --backend-store-uri "sqlite:///$state/mlflow.db" --artifacts-destination "$state/artifacts" \
  --host "$ip" --port 5000 >> "$state/server.log" 2>&1 < /dev/null &
