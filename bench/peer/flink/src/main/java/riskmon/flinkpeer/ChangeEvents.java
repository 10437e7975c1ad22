package riskmon.flinkpeer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.time.Instant;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.connector.kafka.source.reader.deserializer.KafkaRecordDeserializationSchema;
import org.apache.flink.util.Collector;
import org.apache.kafka.clients.consumer.ConsumerRecord;

/**
 * riskmon's change events (docs/contracts.md: {v, lsn, seq, commitTs, xid, table, op, row, old}) signed as riskmon's
 * mapping signs them (lib/mapping.ts factsOf): an insert is +1 of the row, a delete -1 of the old row, an update -1 of
 * the old row and +1 of the new one (dropped as a pair when both land in the same bucket with the same amount).
 * payments count as approvals at approved_at, payment_cancels as cancels at canceled_at.
 */
public class ChangeEvents implements KafkaRecordDeserializationSchema<Fact> {
  private static final long MINUTE = 60_000L;
  private final String doneLsn;
  private transient ObjectMapper json;

  public ChangeEvents(String doneLsn) {
    this.doneLsn = doneLsn;
  }

  @Override
  public void deserialize(ConsumerRecord<byte[], byte[]> record, Collector<Fact> out) throws IOException {
    if (json == null) json = new ObjectMapper();
    if (record.value() == null) return;
    JsonNode e = json.readTree(record.value());
    long commit = Instant.parse(e.get("commitTs").asText()).toEpochMilli();
    String op = e.get("op").asText();
    if (op.equals("heartbeat")) {
      Fact hb = new Fact(null, 0, 0, 0, 0, commit);
      hb.done = doneLsn != null && doneLsn.equals(e.get("lsn").asText());
      out.collect(hb);
      return;
    }
    String table = e.get("table").asText();
    int kind;
    String time;
    if (table.equals("public.payments")) { kind = 0; time = "approved_at"; }
    else if (table.equals("public.payment_cancels")) { kind = 1; time = "canceled_at"; }
    else return;
    Fact before = op.equals("insert") ? null : fact(e.get("old"), kind, time, -1, commit);
    Fact after = op.equals("delete") ? null : fact(e.get("row"), kind, time, 1, commit);
    if (before != null && after != null && before.merchant.equals(after.merchant) && before.minute == after.minute && before.amount == after.amount) return;
    if (before != null) out.collect(before);
    if (after != null) out.collect(after);
  }

  private static Fact fact(JsonNode row, int kind, String time, int sign, long commit) {
    if (row == null || row.isNull()) throw new IllegalArgumentException("update or delete without the old row (REPLICA IDENTITY FULL)");
    long at = Instant.parse(row.get(time).asText()).toEpochMilli();
    return new Fact(row.get("merchant_id").asText(), kind, Math.floorDiv(at, MINUTE) * MINUTE, sign, Long.parseLong(row.get("amount").asText()), commit);
  }

  @Override
  public TypeInformation<Fact> getProducedType() {
    return TypeInformation.of(Fact.class);
  }
}
