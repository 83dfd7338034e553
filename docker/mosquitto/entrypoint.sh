#!/bin/sh
# Mosquitto entrypoint for docker-compose.airflow.yml: (re)write the password file from MQTT_USER /
# MQTT_PASSWORD (.env), then hand over to the image's entrypoint (which drops to the mosquitto user).
set -eu
: "${MQTT_USER:?MQTT_USER is not set (see .env)}"
: "${MQTT_PASSWORD:?MQTT_PASSWORD is not set (see .env)}"

mkdir -p /mosquitto/auth
rm -f /mosquitto/auth/passwd
mosquitto_passwd -c -b /mosquitto/auth/passwd "$MQTT_USER" "$MQTT_PASSWORD"
chown -R mosquitto:mosquitto /mosquitto/auth
chmod 0700 /mosquitto/auth
chmod 0600 /mosquitto/auth/passwd

exec /docker-entrypoint.sh "$@"
