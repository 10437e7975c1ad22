package riskmon.flinkpeer;

/**
 * One signed bucket delta of a change event (insert +1, delete -1, update -old +new), or a heartbeat
 * (merchant == null) that only carries the source's commit time. A POJO so Flink serializes it without Kryo.
 */
public class Fact {
  /** Merchant id; null for a heartbeat. */
  public String merchant;
  /** 0 = approval, 1 = cancel. */
  public int kind;
  /** Start of the transaction-time minute (epoch ms, UTC). */
  public long minute;
  /** +1 or -1. */
  public int sign;
  public long amount;
  /** The source commit time (epoch ms): the element's event time, what the watermark follows. */
  public long commitMs;
  /** Set on the heartbeat that closes the backlog (its LSN is the one the bench names). */
  public boolean done;

  public Fact() {}

  public Fact(String merchant, int kind, long minute, int sign, long amount, long commitMs) {
    this.merchant = merchant;
    this.kind = kind;
    this.minute = minute;
    this.sign = sign;
    this.amount = amount;
    this.commitMs = commitMs;
  }
}
