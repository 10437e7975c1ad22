#!/bin/bash
# apache/kafka's environment contract, reduced to what riskmon uses: server.properties from KAFKA_* variables (or
# a single-node KRaft default without any), storage formatted once with CLUSTER_ID, then the broker in the
# foreground (logging to stdout).
set -Eeuo pipefail
CONF=/opt/kafka/config/server.properties
CLUSTER_ID="${CLUSTER_ID:-5L6g3nShT-eMCtK--X86sw}"
not_properties='^KAFKA_(HEAP_OPTS|OPTS|JVM_PERFORMANCE_OPTS|GC_LOG_OPTS|JMX_OPTS|LOG4J_OPTS|LOG4J_.*|VERSION|HOME)$'

props=()
while IFS= read -r var; do
  [[ $var =~ $not_properties ]] && continue
  key="${var#KAFKA_}"
  key="$(tr '[:upper:]' '[:lower:]' <<<"$key" | sed -e 's/___/-/g' -e 's/__/\x01/g' -e 's/_/./g' -e 's/\x01/_/g')"
  props+=("$key=${!var}")
done < <(compgen -e | grep '^KAFKA_' || true)

if [ ${#props[@]} -eq 0 ]; then
  props=(
    process.roles=broker,controller node.id=1 controller.quorum.voters=1@localhost:9093
    listeners=PLAINTEXT://:9092,CONTROLLER://:9093 advertised.listeners=PLAINTEXT://localhost:9092
    listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT controller.listener.names=CONTROLLER
    inter.broker.listener.name=PLAINTEXT log.dirs=/tmp/kraft-combined-logs num.partitions=1
    offsets.topic.replication.factor=1 transaction.state.log.replication.factor=1 transaction.state.log.min.isr=1
    group.initial.rebalance.delay.ms=0
  )
fi
printf '%s\n' "${props[@]}" > "$CONF"

CP='/opt/kafka/libs/*'
LOG4J="-Dlog4j.configuration=file:/opt/kafka/config/log4j.properties"
read -r -a heap <<<"${KAFKA_HEAP_OPTS:--Xmx1G -Xms1G}"
read -r -a perf <<<"${KAFKA_JVM_PERFORMANCE_OPTS:--server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true}"
read -r -a extra <<<"${KAFKA_OPTS:-}"

java "$LOG4J" -cp "$CP" kafka.tools.StorageTool format --ignore-formatted -t "$CLUSTER_ID" -c "$CONF"
exec java "${heap[@]}" "${perf[@]}" "${extra[@]}" "$LOG4J" -cp "$CP" kafka.Kafka "$CONF"
