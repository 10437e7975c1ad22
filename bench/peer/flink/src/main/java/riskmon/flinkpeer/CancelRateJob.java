package riskmon.flinkpeer;

import java.time.Duration;
import java.time.Instant;
import java.time.LocalDate;
import java.time.ZoneId;
import java.util.HashMap;
import java.util.Iterator;
import java.util.Map;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.serialization.SimpleStringSchema;
import org.apache.flink.api.common.state.MapState;
import org.apache.flink.api.common.state.MapStateDescriptor;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.PrimitiveArrayTypeInfo;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.connector.base.DeliveryGuarantee;
import org.apache.flink.connector.kafka.sink.KafkaRecordSerializationSchema;
import org.apache.flink.connector.kafka.sink.KafkaSink;
import org.apache.flink.connector.kafka.source.KafkaSource;
import org.apache.flink.connector.kafka.source.enumerator.initializer.OffsetsInitializer;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.util.Collector;

/**
 * riskmon's aggregate-and-alert half as a Flink DataStream job, for the side-by-side benchmark (bench/flink.ts):
 *
 *   Kafka source (riskmon's change topic, from the earliest offset; watermark = source commit time − 5 s, per
 *   partition) → signed facts (ChangeEvents) → keyBy merchant → RiskFunction: per-merchant minute buckets and
 *   local-day totals in keyed state, and the cancel_rate_spike rule evaluated for every closed minute from `evalFrom`
 *   on (event-time timer at the minute's end) → verdicts → Kafka sink, exactly-once (transactions committed on
 *   checkpoints).
 *
 * Late rows: a fact whose minute closed more than `allowedLatenessMs` before the watermark is dropped (what Flink's
 * window operators do with allowedLateness; counted in the log). One inside the allowed lateness is added and the
 * minutes already judged whose 60-minute window holds it are judged again; a changed verdict is emitted again (the
 * newest verdict per merchant and minute is the job's answer).
 *
 * Arguments are key=value: brokers, topic, alerts, group, evalFrom (epoch ms), doneLsn, parallelism (2),
 * stateBackend (hashmap|rocksdb), checkpointMs (5000), checkpointDir, allowedLatenessMs (3600000),
 * outOfOrdernessMs (5000), tz (Asia/Seoul), and the rule: multiplier 2, minApprovals 20, minCancels 5,
 * minBaselineApprovals 100, maxPValue 1e-4, windowMinutes 60, baselineDays 7 (riskmon's defaults).
 */
public final class CancelRateJob {
  static final long MINUTE = 60_000L;

  public static void main(String[] argv) throws Exception {
    Map<String, String> a = new HashMap<>();
    for (String s : argv) { int i = s.indexOf('='); a.put(s.substring(0, i), s.substring(i + 1)); }
    int parallelism = Integer.parseInt(a.getOrDefault("parallelism", "2"));
    Map<String, String> c = new HashMap<>();
    c.put("parallelism.default", String.valueOf(parallelism));
    c.put("taskmanager.numberOfTaskSlots", String.valueOf(parallelism));
    c.put("state.backend.type", a.getOrDefault("stateBackend", "hashmap"));
    c.put("execution.checkpointing.interval", a.getOrDefault("checkpointMs", "5000") + " ms");
    c.put("execution.checkpointing.mode", "EXACTLY_ONCE");
    c.put("execution.checkpointing.storage", "filesystem");
    c.put("execution.checkpointing.dir", "file://" + a.get("checkpointDir"));
    c.put("execution.checkpointing.min-pause", "0 ms");
    StreamExecutionEnvironment env = StreamExecutionEnvironment.createLocalEnvironment(Configuration.fromMap(c));
    env.setParallelism(parallelism);

    KafkaSource<Fact> source = KafkaSource.<Fact>builder()
        .setBootstrapServers(a.get("brokers"))
        .setTopics(a.get("topic"))
        .setGroupId(a.get("group"))
        .setStartingOffsets(OffsetsInitializer.earliest())
        .setDeserializer(new ChangeEvents(a.get("doneLsn")))
        .setProperty("fetch.max.bytes", String.valueOf(32 << 20))
        .setProperty("max.partition.fetch.bytes", String.valueOf(4 << 20))
        .build();
    long ooo = Long.parseLong(a.getOrDefault("outOfOrdernessMs", "5000"));
    DataStream<Fact> facts = env.fromSource(source,
        WatermarkStrategy.<Fact>forBoundedOutOfOrderness(Duration.ofMillis(ooo)).withTimestampAssigner((f, ts) -> f.commitMs),
        "riskmon change topic");

    Rule rule = new Rule(a);
    DataStream<String> verdicts = facts
        .flatMap((Fact f, Collector<Fact> out) -> {
          if (f.merchant != null) { out.collect(f); return; }
          if (!f.done) return; // heartbeats only move the watermark
          // the closing heartbeat: one marker per key below, so every keyed subtask reports when it has caught up
          for (int i = 0; i < 16; i++) { Fact m = new Fact("\u0000done" + i, -1, 0, 0, 0, f.commitMs); out.collect(m); }
        }).returns(Fact.class).name("signed facts")
        .keyBy(f -> f.merchant)
        .process(new RiskFunction(rule, Long.parseLong(a.get("evalFrom")), Long.parseLong(a.getOrDefault("allowedLatenessMs", "3600000")),
            ZoneId.of(a.getOrDefault("tz", "Asia/Seoul")), ooo)).name("buckets + cancel_rate_spike");

    KafkaSink<String> sink = KafkaSink.<String>builder()
        .setBootstrapServers(a.get("brokers"))
        .setRecordSerializer(KafkaRecordSerializationSchema.builder().setTopic(a.get("alerts")).setValueSerializationSchema(new SimpleStringSchema()).build())
        .setDeliveryGuarantee(DeliveryGuarantee.EXACTLY_ONCE)
        .setTransactionalIdPrefix(a.get("group") + "-tx")
        .setProperty("transaction.timeout.ms", "600000")
        .build();
    verdicts.sinkTo(sink).name("verdicts (Kafka, exactly-once)");
    System.out.println("STARTING " + System.currentTimeMillis());
    env.execute("riskmon cancel_rate_spike peer");
  }

  /** cancel_rate_spike as riskmon judges it (alerting/rules/cancel-rate-spike.ts, without cohorts). */
  static final class Rule implements java.io.Serializable {
    final double multiplier, maxPValue;
    final long minApprovals, minCancels, minBaselineApprovals;
    final int windowMinutes, baselineDays;

    Rule(Map<String, String> a) {
      multiplier = Double.parseDouble(a.getOrDefault("multiplier", "2"));
      maxPValue = Double.parseDouble(a.getOrDefault("maxPValue", "1e-4"));
      minApprovals = Long.parseLong(a.getOrDefault("minApprovals", "20"));
      minCancels = Long.parseLong(a.getOrDefault("minCancels", "5"));
      minBaselineApprovals = Long.parseLong(a.getOrDefault("minBaselineApprovals", "100"));
      windowMinutes = Integer.parseInt(a.getOrDefault("windowMinutes", "60"));
      baselineDays = Integer.parseInt(a.getOrDefault("baselineDays", "7"));
    }

    boolean breach(long wA, long wC, long bA, long bC) {
      if (wA < minApprovals || wC < minCancels) return false;
      if (bA < minBaselineApprovals || bA <= 0) return false;
      double rate = (double) wC / wA;
      double threshold = multiplier * ((double) bC / bA);
      if (rate < threshold) return false;
      return Tails.binomialTail(wC, wC + bC, (double) wA / (wA + bA)) < maxPValue;
    }
  }

  /**
   * Keyed by merchant. State: minute → [approvals, approved amount, cancels, canceled amount] for the minutes a window
   * or a late row can still reach; local day → the same for the baseline days; the next minute to judge, the last
   * judged, the last minute any window still covers; the breaching minutes already emitted (for re-judging).
   */
  static final class RiskFunction extends KeyedProcessFunction<String, Fact, String> {
    private final Rule rule;
    private final long evalFrom, lateness, ooo;
    private final ZoneId zone;
    private transient MapState<Long, long[]> minutes, days;
    private transient MapState<Long, Boolean> breached;
    private transient ValueState<Long> next, last, until, cleanup;
    private transient long dropped, reJudged;

    RiskFunction(Rule rule, long evalFrom, long lateness, ZoneId zone, long ooo) {
      this.rule = rule; this.evalFrom = evalFrom; this.lateness = lateness; this.zone = zone; this.ooo = ooo;
    }

    @Override
    public void open(OpenContext ctx) {
      minutes = getRuntimeContext().getMapState(new MapStateDescriptor<>("minutes", Types.LONG, PrimitiveArrayTypeInfo.LONG_PRIMITIVE_ARRAY_TYPE_INFO));
      days = getRuntimeContext().getMapState(new MapStateDescriptor<>("days", Types.LONG, PrimitiveArrayTypeInfo.LONG_PRIMITIVE_ARRAY_TYPE_INFO));
      breached = getRuntimeContext().getMapState(new MapStateDescriptor<>("breached", Types.LONG, Types.BOOLEAN));
      next = getRuntimeContext().getState(new ValueStateDescriptor<>("next", Types.LONG));
      last = getRuntimeContext().getState(new ValueStateDescriptor<>("last", Types.LONG));
      until = getRuntimeContext().getState(new ValueStateDescriptor<>("until", Types.LONG));
      cleanup = getRuntimeContext().getState(new ValueStateDescriptor<>("cleanup", Types.LONG));
    }

    private long dayOf(long ms) {
      return LocalDate.ofInstant(Instant.ofEpochMilli(ms), zone).toEpochDay();
    }

    private long dayEnd(long day) {
      return LocalDate.ofEpochDay(day + 1).atStartOfDay(zone).toInstant().toEpochMilli();
    }

    @Override
    public void processElement(Fact f, Context ctx, Collector<String> out) throws Exception {
      if (f.kind < 0) { ctx.timerService().registerEventTimeTimer(f.commitMs - ooo - 1); return; }
      long wm = ctx.timerService().currentWatermark();
      long d = dayOf(f.minute);
      if (dayEnd(d) + lateness > wm) {
        long[] t = days.get(d);
        if (t == null) t = new long[4];
        t[f.kind * 2] += f.sign;
        t[f.kind * 2 + 1] += f.sign * f.amount;
        days.put(d, t);
      }
      if (f.minute + MINUTE + lateness <= wm) { // later than the allowed lateness: dropped (and said so)
        dropped++;
        System.out.println("DROPPED " + f.merchant + " " + f.minute);
        return;
      }
      long[] b = minutes.get(f.minute);
      if (b == null) b = new long[4];
      b[f.kind * 2] += f.sign;
      b[f.kind * 2 + 1] += f.sign * f.amount;
      minutes.put(f.minute, b);
      long windowEnd = f.minute + (rule.windowMinutes - 1) * MINUTE; // the last minute whose window holds it
      Long u = until.value();
      if (u == null || windowEnd > u) until.update(windowEnd);
      Long l = last.value();
      // minutes already judged that this fact changes: judged again now
      if (l != null && f.minute <= l) {
        for (long m = Math.max(f.minute, evalFrom); m <= Math.min(windowEnd, l); m += MINUTE) { judge(m, ctx.getCurrentKey(), out, true); reJudged++; }
      }
      if (next.value() == null && windowEnd >= evalFrom) {
        long first = Math.max(Math.max(f.minute, evalFrom), l == null ? Long.MIN_VALUE : l + MINUTE);
        if (first <= windowEnd) { next.update(first); ctx.timerService().registerEventTimeTimer(first + MINUTE - 1); }
      }
      long hourEnd = Math.floorDiv(f.minute, 3_600_000L) * 3_600_000L + 3_600_000L;
      Long cu = cleanup.value();
      if (cu == null) { long at = hourEnd + rule.windowMinutes * MINUTE + lateness; cleanup.update(at); ctx.timerService().registerEventTimeTimer(at); }
    }

    private void judge(long m, String merchant, Collector<String> out, boolean again) throws Exception {
      long wA = 0, wC = 0;
      for (int i = 0; i < rule.windowMinutes; i++) {
        long[] b = minutes.get(m - i * MINUTE);
        if (b != null) { wA += b[0]; wC += b[2]; }
      }
      long bA = 0, bC = 0;
      long today = dayOf(m);
      for (long d = today - rule.baselineDays; d < today; d++) {
        long[] t = days.get(d);
        if (t != null) { bA += t[0]; bC += t[2]; }
      }
      boolean br = rule.breach(wA, wC, bA, bC);
      boolean was = breached.contains(m);
      if (br && !was) breached.put(m, true);
      if (!br && was) breached.remove(m);
      // every breach is emitted when first judged; on re-judging, only a changed verdict
      if (br != was && (br || again)) {
        out.collect("{\"merchant\":\"" + merchant + "\",\"minute\":" + m + ",\"breach\":" + br + ",\"again\":" + again
            + ",\"wA\":" + wA + ",\"wC\":" + wC + ",\"bA\":" + bA + ",\"bC\":" + bC + ",\"at\":" + System.currentTimeMillis() + "}");
      }
    }

    @Override
    public void onTimer(long ts, OnTimerContext ctx, Collector<String> out) throws Exception {
      String key = ctx.getCurrentKey();
      if (key.startsWith("\u0000done")) {
        System.out.println("CAUGHT_UP " + getRuntimeContext().getTaskInfo().getIndexOfThisSubtask() + " " + System.currentTimeMillis() + " dropped " + dropped + " rejudged " + reJudged);
        return;
      }
      Long cu = cleanup.value();
      if (cu != null && cu == ts) {
        cleanup.clear();
        long keepFrom = ts - rule.windowMinutes * MINUTE - lateness - MINUTE;
        boolean any = false;
        for (Iterator<Map.Entry<Long, long[]>> it = minutes.iterator(); it.hasNext();) {
          if (it.next().getKey() < keepFrom) it.remove(); else any = true;
        }
        for (Iterator<Map.Entry<Long, Boolean>> it = breached.iterator(); it.hasNext();) if (it.next().getKey() < keepFrom) it.remove();
        long keepDay = dayOf(ts) - rule.baselineDays - 1;
        for (Iterator<Map.Entry<Long, long[]>> it = days.iterator(); it.hasNext();) if (it.next().getKey() < keepDay) it.remove();
        if (any) { long at = ts + 3_600_000L; cleanup.update(at); ctx.timerService().registerEventTimeTimer(at); }
      }
      Long n = next.value();
      if (n != null && n + MINUTE - 1 == ts) {
        judge(n, key, out, false);
        last.update(n);
        long m = n + MINUTE;
        Long u = until.value();
        if (u != null && m <= u) { next.update(m); ctx.timerService().registerEventTimeTimer(m + MINUTE - 1); }
        else next.clear();
      }
    }
  }
}
