#!/bin/sh
# Registers cdf-orchestrator's search attributes once the Temporal server answers (idempotent).
set -eu
until temporal operator cluster health --address "$TEMPORAL_ADDRESS" >/dev/null 2>&1; do
  echo "waiting for Temporal at $TEMPORAL_ADDRESS ..."
  sleep 2
done
for attribute in CdfSource=Keyword CdfState=Keyword CdfLastVersion=Int CdfFanInOutcome=Keyword CdfDispatchedIds=Int CdfParkedBatches=Int; do
  name=${attribute%%=*}
  type=${attribute#*=}
  if temporal operator search-attribute list --address "$TEMPORAL_ADDRESS" | grep -q "\b$name\b"; then
    echo "search attribute $name: already registered"
  else
    temporal operator search-attribute create --address "$TEMPORAL_ADDRESS" --namespace default --name "$name" --type "$type"
  fi
done
