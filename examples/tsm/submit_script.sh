#!/bin/sh
# The example batch script of the TSM templates: it stands in for `python tsm-extractor/main.py
# "$@"`, printing its arguments and whether the broker credentials arrived (never their values).
echo "tsm-extractor $*"
if [ -n "${MQTT_USER:-}" ] && [ -n "${MQTT_PASSWORD:-}" ]; then
  echo "broker credentials: present (${#MQTT_PASSWORD} characters)"
else
  echo "broker credentials: missing"
fi
sleep "${TSM_DEMO_SLEEP_S:-1}"
echo "finished"
